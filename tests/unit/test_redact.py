import io

import pytest

from ingestion import redact as redaction
from ingestion.redact import RedactingStream, redact, remember_known_secrets, remember_secret, remember_uri, uri_password


@pytest.fixture(autouse=True)
def no_known_secrets(monkeypatch):
    monkeypatch.setattr(redaction, "_known", set())


def test_password_in_uri_is_hidden():
    text = "cannot reach mongodb+srv://alice:s3cr3t@cluster0.example.invalid/db?retryWrites=true"
    out = redact(text)
    assert "s3cr3t" not in out and "alice" not in out
    assert "mongodb+srv://***@cluster0.example.invalid/db" in out


@pytest.mark.parametrize("password", ["se/cret", "p@ss@word", "a:b:c"])
def test_a_password_pymongo_would_refuse_is_hidden_whole(password):
    out = redact(f"invalid MongoDB URI mongodb://alice:{password}@host.example/: Port contains non-digit characters")
    assert out == "invalid MongoDB URI mongodb://***@host.example/: Port contains non-digit characters"


def test_a_known_password_is_hidden_even_where_the_uri_was_taken_apart():
    remember_uri("mongodb://alice:my secret@host.example/")
    assert uri_password("mongodb://alice:my secret@host.example/") == "my secret"
    out = redact("mongodb://alice:my secret@host.example/ and later: password 'my secret' was refused")
    assert "secret" not in out


def test_quoted_and_unquoted_forms_of_a_known_secret_are_hidden():
    remember_uri("mongodb://alice:p%40ss%2Fw0rd@host/")
    assert redact("auth failed with p@ss/w0rd") == "auth failed with ***"
    assert redact("uri had p%40ss%2Fw0rd in it") == "uri had *** in it"


@pytest.mark.parametrize("text", [
    "{'password': 'hunter22', 'user': 'alice'}",
    'RedshiftCredentials(host="h", password="hunter22")',
    '{"aws_secret_access_key": "hunter22"}',
    "s3://bucket?aws_secret_access_key=hunter22&region=us-east-1",
    "connect(user=alice password=hunter22)",
])
def test_secrets_in_reprs_and_parameters_are_hidden(text):
    out = redact(text)
    assert "hunter22" not in out and "***" in out


def test_secrets_of_the_environment_are_hidden():
    remember_known_secrets({"REDSHIFT_PASSWORD": "rs-pass-1", "AWS_SECRET_ACCESS_KEY": "aws/Key+9", "PATH": "/usr/bin",
                            "ATLAS_URI": "mongodb://u:uri-pass@h/"}, extra=["--uri=mongodb://u:flag-pass@h/"])
    out = redact("rs-pass-1 aws/Key+9 uri-pass flag-pass /usr/bin")
    assert out == "*** *** *** *** /usr/bin"


def test_short_known_values_are_not_masked_as_free_text():
    remember_secret("ab")
    assert redact("tab stab") == "tab stab"


def test_text_without_credentials_is_unchanged():
    assert redact("mongodb://127.0.0.1:27017/") == "mongodb://127.0.0.1:27017/"
    assert redact("alice@example.com wrote: resume token 8263a1") == "alice@example.com wrote: resume token 8263a1"


def test_the_stream_redacts_whole_lines_and_passes_partial_ones_on_flush():
    remember_secret("hunter22")
    target = io.StringIO()
    stream = RedactingStream(target)
    stream.write("pass: hun")
    assert target.getvalue() == ""  # a secret split between writes of one line is still masked
    stream.write("ter22\nnext ")
    assert target.getvalue() == "pass: ***\n"
    stream.flush()
    assert target.getvalue() == "pass: ***\nnext "


def test_an_unexpected_error_prints_a_redacted_traceback(monkeypatch, capsys):
    from ingestion import cli

    def boom(args):
        raise RuntimeError(f"unexpected, while holding {args.uri} and password='hunter22'")

    monkeypatch.setattr(cli, "_cmd_run", boom)
    code = cli.main(["run", "--uri", "mongodb://alice:Sekr1t-9@h/", "--database", "d"])
    err = capsys.readouterr().err
    assert code == 1
    assert "Traceback" in err and "RuntimeError: unexpected, while holding mongodb://***@h/" in err
    assert "Sekr1t-9" not in err and "hunter22" not in err
