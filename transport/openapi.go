package transport

import (
	"net/http"

	"github.com/lunasentri/lunasentri/docs"
)

// docRoutes serves the API's own OpenAPI document (docs/openapi.yaml,
// embedded), converted to JSON once, here at start.
func (a *API) docRoutes() {
	doc, err := docs.OpenAPIJSON()
	if err != nil {
		// Only a broken build gets here (docs' own test loads the document).
		a.logger.Error("openapi document unusable", "error", err)
	}
	a.route("/v1/openapi.json", map[string]http.HandlerFunc{"GET": func(w http.ResponseWriter, _ *http.Request) {
		if err != nil {
			writeError(w, http.StatusInternalServerError, "the OpenAPI document is not available: %s", err.Error())
			return
		}
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("Cache-Control", "public, max-age=3600")
		_, _ = w.Write(doc)
	}})
}
