from ingestion.local.generator import (
    FIRST_RECORD_DATE,
    churn_probability,
    document_id,
    generate_document,
    generate_documents,
    phone_number,
)


def test_same_seed_same_documents_and_other_seed_differs():
    assert list(generate_documents(50, seed=7)) == list(generate_documents(50, seed=7))
    assert generate_document(3, seed=7) != generate_document(3, seed=8)


def test_document_does_not_depend_on_batch_position():
    assert list(generate_documents(5, seed=1, start=10)) == [generate_document(i, 1) for i in range(10, 15)]


def test_nested_shape_and_service_calls():
    for doc in generate_documents(500, seed=3):
        assert set(doc) == {"_id", "customer", "plans", "usage", "billing", "service_calls", "record_date", "updated_at", "churned"}
        assert set(doc["usage"]) == {"day", "evening", "night", "international"}
        assert doc["record_date"].date() >= FIRST_RECORD_DATE
        assert doc["record_date"].year <= 2021
        assert doc["updated_at"] >= doc["record_date"]
        assert doc["record_date"].tzinfo is not None
        for call in doc["service_calls"]:
            assert call["opened_at"] <= doc["record_date"]
        if not doc["plans"]["voice_mail"]["enrolled"]:
            assert doc["plans"]["voice_mail"]["messages"] == 0


def test_record_dates_span_three_years():
    years = {d["record_date"].year for d in generate_documents(2000)}
    assert years == {2019, 2020, 2021}


def test_ids_and_phones_are_unique_and_well_formed():
    ids = [document_id(42, i) for i in range(20_000)]
    assert len(set(ids)) == len(ids) and ids == sorted(ids)
    phones = [phone_number(i) for i in range(200_000)]
    assert len(set(phones)) == len(phones)
    assert all(len(p) == 8 and p[3] == "-" for p in phones[:1000])


def test_churn_signal_is_planted():
    docs = list(generate_documents(5000, seed=11))
    probs = [churn_probability(d) for d in docs]
    assert all(0.0 < p < 1.0 for p in probs)
    rate = sum(d["churned"] for d in docs) / len(docs)
    assert 0.08 < rate < 0.25
    # Customers who called service 4+ times churn far more often than those who never called.
    heavy = [d["churned"] for d in docs if len(d["service_calls"]) >= 4]
    none_ = [d["churned"] for d in docs if not d["service_calls"]]
    assert sum(heavy) / len(heavy) > 3 * sum(none_) / len(none_)
    # The label follows the stated probability: mean probability matches the observed rate.
    assert abs(sum(probs) / len(probs) - rate) < 0.02
