package transport

import (
	"encoding/json"
	"errors"
	"io"
	"strings"
)

// jsonErrorMessage says what was wrong with a request body in the user's
// terms ("body is not JSON"), not the decoder's ("invalid character 'a' in
// literal null (expecting 'u')").
func jsonErrorMessage(err error) string {
	var se *json.SyntaxError
	var te *json.UnmarshalTypeError
	switch {
	case errors.As(err, &se), errors.Is(err, io.ErrUnexpectedEOF):
		return "body is not JSON"
	case errors.As(err, &te):
		if te.Field != "" {
			return "body is not valid: field \"" + te.Field + "\" must be " + jsonTypeName(te.Type.String())
		}
		return "body is not valid: a JSON object is required"
	}
	msg := strings.TrimPrefix(err.Error(), "json: ")
	if field, ok := strings.CutPrefix(msg, "unknown field "); ok {
		return "body has an unknown field " + field
	}
	return "body is not valid: " + msg
}

// jsonTypeName turns a Go type into the JSON word a user knows.
func jsonTypeName(goType string) string {
	switch {
	case goType == "string":
		return "a string"
	case goType == "bool":
		return "true or false"
	case strings.HasPrefix(goType, "map["), strings.HasPrefix(goType, "struct"), strings.Contains(goType, "."):
		return "an object"
	case strings.HasPrefix(goType, "[]"):
		return "an array"
	case strings.HasPrefix(goType, "int"), strings.HasPrefix(goType, "uint"), strings.HasPrefix(goType, "float"):
		return "a number"
	}
	return goType
}
