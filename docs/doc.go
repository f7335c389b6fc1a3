// Package docs holds the project's API reference: api.md for people and
// openapi.yaml for tools. It owns the embedded OpenAPI document and its one
// conversion to JSON (served at GET /v1/openapi.json). It must never import
// another package of this module.
package docs
