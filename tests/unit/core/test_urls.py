from fhir_server.core.urls import without_credentials


def test_credentials_and_query_never_shown() -> None:
    url = "mongodb://admin:s3cret@db1:27017,db2/fhir?replicaSet=rs0&tlsCertificateKeyFilePassword=x"
    assert without_credentials(url) == "mongodb://db1:27017,db2/fhir"
    assert without_credentials("mongodb+srv://u@cluster.example/fhir") == (
        "mongodb+srv://cluster.example/fhir"
    )
    assert without_credentials("mongodb://127.0.0.1/fhir") == "mongodb://127.0.0.1/fhir"


def test_origin_is_scheme_host_and_port() -> None:
    from fhir_server.core.urls import origin

    assert origin("https://ehr.example:8443/fhir/Patient?x=1") == "https://ehr.example:8443"
    assert origin("http://127.0.0.1:8000/index.html") == "http://127.0.0.1:8000"
