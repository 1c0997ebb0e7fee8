from fhir_server.core.urls import without_credentials


def test_credentials_and_query_never_shown() -> None:
    url = "mongodb://admin:s3cret@db1:27017,db2/fhir?replicaSet=rs0&tlsCertificateKeyFilePassword=x"
    assert without_credentials(url) == "mongodb://db1:27017,db2/fhir"
    assert without_credentials("mongodb+srv://u@cluster.example/fhir") == (
        "mongodb+srv://cluster.example/fhir"
    )
    assert without_credentials("mongodb://127.0.0.1/fhir") == "mongodb://127.0.0.1/fhir"
