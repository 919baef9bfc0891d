from ingestion.redact import redact_uri


def test_password_in_uri_is_hidden():
    text = "cannot reach mongodb+srv://alice:s3cr3t@cluster0.example.invalid/db?retryWrites=true"
    out = redact_uri(text)
    assert "s3cr3t" not in out and "alice" not in out
    assert "mongodb+srv://***@cluster0.example.invalid/db" in out


def test_secret_query_parameters_are_hidden():
    out = redact_uri("s3://bucket?aws_secret_access_key=abcd/efg&region=us-east-1")
    assert "abcd" not in out and "region=us-east-1" in out


def test_text_without_credentials_is_unchanged():
    assert redact_uri("mongodb://127.0.0.1:27017/") == "mongodb://127.0.0.1:27017/"
