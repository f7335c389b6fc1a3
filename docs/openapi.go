package docs

import (
	_ "embed"
	"encoding/json"
	"fmt"

	"go.yaml.in/yaml/v3"
)

// OpenAPIYAML is docs/openapi.yaml as built into the binary.
//
//go:embed openapi.yaml
var OpenAPIYAML []byte

// OpenAPIJSON converts the embedded document to JSON. Call it once at start:
// it parses the whole document.
func OpenAPIJSON() ([]byte, error) {
	var doc any
	if err := yaml.Unmarshal(OpenAPIYAML, &doc); err != nil {
		return nil, fmt.Errorf("docs/openapi.yaml: %w", err)
	}
	out, err := json.Marshal(jsonable(doc))
	if err != nil {
		return nil, fmt.Errorf("docs/openapi.yaml to JSON: %w", err)
	}
	return out, nil
}

// jsonable turns YAML maps with non-string keys (which encoding/json
// cannot write) into string-keyed maps.
func jsonable(v any) any {
	switch t := v.(type) {
	case map[string]any:
		for k, e := range t {
			t[k] = jsonable(e)
		}
		return t
	case map[any]any:
		m := make(map[string]any, len(t))
		for k, e := range t {
			m[fmt.Sprint(k)] = jsonable(e)
		}
		return m
	case []any:
		for i, e := range t {
			t[i] = jsonable(e)
		}
		return t
	}
	return v
}
