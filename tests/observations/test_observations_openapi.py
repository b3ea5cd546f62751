"""The API describes itself: OpenAPI at /openapi.json, Swagger UI at /api/docs."""

from __future__ import annotations

from typing import Any

from fastapi.testclient import TestClient


def openapi(client: TestClient) -> dict[str, Any]:
    answer = client.get("/openapi.json")
    assert answer.status_code == 200, answer.text
    document: dict[str, Any] = answer.json()
    return document


def resolve(document: dict[str, Any], schema: dict[str, Any]) -> dict[str, Any]:
    """A schema with its $ref (if any) followed inside the document."""
    while "$ref" in schema:
        assert schema["$ref"].startswith("#/"), schema["$ref"]
        target: Any = document
        for part in schema["$ref"][2:].split("/"):
            assert part in target, f"{schema['$ref']} does not resolve"
            target = target[part]
        schema = target
    return schema


def references(node: Any) -> list[str]:
    """Every $ref anywhere below a node."""
    if isinstance(node, dict):
        found = [node["$ref"]] if isinstance(node.get("$ref"), str) else []
        return found + [ref for value in node.values() for ref in references(value)]
    if isinstance(node, list):
        return [ref for value in node for ref in references(value)]
    return []


def test_the_openapi_document_is_served_and_lists_the_data_sharing_routes(client) -> None:
    document = openapi(client)

    assert document["openapi"].startswith("3.")
    assert "post" in document["paths"]["/api/v1/observations"]
    for path in (
        "/api/v1/indicators",
        "/api/v1/indicators/{code}",
        "/api/v1/indicators/{code}/series",
        "/api/v1/indicators/{code}/latest",
    ):
        assert "get" in document["paths"][path], path


def test_the_post_observations_operation_documents_its_request_body(client) -> None:
    document = openapi(client)
    body = document["paths"]["/api/v1/observations"]["post"]["requestBody"]

    batch = resolve(document, body["content"]["application/json"]["schema"])
    observation = resolve(document, resolve(document, batch["properties"]["observations"])["items"])

    assert body["required"] is True
    assert batch["required"] == ["observations"]
    assert set(observation["required"]) == {"indicator", "subject", "period", "value"}
    assert {"null_reason", "dimensions", "source_ref", "feed"} <= set(observation["properties"])
    assert "2025-2026" in observation["properties"]["period"]["description"]


def test_the_post_observations_operation_documents_its_answer_and_errors(client) -> None:
    document = openapi(client)
    operation = document["paths"]["/api/v1/observations"]["post"]

    answer = resolve(document, operation["responses"]["200"]["content"]["application/json"]["schema"])

    assert {"accepted", "created", "replaced", "unchanged", "rejected"} <= set(answer["properties"])
    assert {"400", "401", "409", "413", "422"} <= set(operation["responses"])


def test_every_reference_in_the_openapi_document_resolves(client) -> None:
    document = openapi(client)

    for ref in references(document):
        resolve(document, {"$ref": ref})


def test_the_interactive_docs_are_served_at_api_docs_and_read_the_openapi_document(client) -> None:
    answer = client.get("/api/docs")

    assert answer.status_code == 200
    assert answer.headers["content-type"].startswith("text/html")
    assert "swagger" in answer.text.lower()
    assert '<script src="/static/swagger-init.js">' in answer.text  # a file, not an inline script (CSP)
    assert 'url: "/openapi.json"' in client.get("/static/swagger-init.js").text
