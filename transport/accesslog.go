package transport

import (
	"net/http"
	"time"
)

// accessLog wraps h with one debug line per request: method, path (keys in
// /ping/ paths redacted), status and duration. At any level above debug it
// returns h itself, so the heartbeat hot path pays nothing for it.
func (a *API) accessLog(h http.Handler) http.Handler {
	if !a.logger.IsDebug() {
		return h
	}
	logger := a.logger.Named("access")
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		sw := &statusWriter{ResponseWriter: w, status: http.StatusOK}
		h.ServeHTTP(sw, r)
		logger.Debug("request", "method", r.Method, "path", redactPath(r.URL.Path),
			"status", sw.status, "duration", time.Since(start), "remote", r.RemoteAddr)
	})
}

// statusWriter remembers the status a handler wrote.
type statusWriter struct {
	http.ResponseWriter
	status int
	wrote  bool
}

func (w *statusWriter) WriteHeader(code int) {
	if !w.wrote {
		w.status, w.wrote = code, true
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *statusWriter) Write(b []byte) (int, error) {
	w.wrote = true
	return w.ResponseWriter.Write(b)
}

// Unwrap lets http.ResponseController reach the real writer (flush,
// deadlines for streaming answers).
func (w *statusWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }
