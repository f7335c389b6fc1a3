package docs_test

import (
	"context"
	"testing"

	"github.com/getkin/kin-openapi/openapi3"

	"github.com/lunasentri/lunasentri/docs"
)

// TestOpenAPI_IsAValidDocument: the embedded document converts to JSON and
// is a valid OpenAPI 3 document by kin-openapi's rules.
func TestOpenAPI_IsAValidDocument(t *testing.T) {
	b, err := docs.OpenAPIJSON()
	if err != nil {
		t.Fatal(err)
	}
	doc, err := openapi3.NewLoader().LoadFromData(b)
	if err != nil {
		t.Fatalf("load: %v", err)
	}
	if err := doc.Validate(context.Background()); err != nil {
		t.Fatalf("validate: %v", err)
	}
	if n := len(doc.Paths.Map()); n < 30 {
		t.Fatalf("only %d paths", n)
	}
}
