package tlsutil

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"os"
	"slices"
)

// Files names a node's TLS material.
type Files struct {
	CA   string // PEM bundle of the cluster CA
	Cert string // this node's certificate (PEM)
	Key  string // its private key (PEM)
	// VerifyIncoming requires a client certificate signed by the CA on the
	// API too (Raft and internal calls always require one).
	VerifyIncoming bool
}

// Enabled reports whether any TLS file is set.
func (f Files) Enabled() bool { return f.CA != "" || f.Cert != "" || f.Key != "" }

// Check reports a missing or unreadable piece in one line.
func (f Files) Check() error {
	if f.Cert == "" || f.Key == "" || f.CA == "" {
		return errors.New("TLS needs all of -tls-cert, -tls-key and -tls-ca")
	}
	_, _, err := f.load()
	return err
}

func (f Files) load() (tls.Certificate, *x509.CertPool, error) {
	cert, err := tls.LoadX509KeyPair(f.Cert, f.Key)
	if err != nil {
		return tls.Certificate{}, nil, fmt.Errorf("load -tls-cert/-tls-key: %w", err)
	}
	pool, err := LoadPool(f.CA)
	if err != nil {
		return tls.Certificate{}, nil, fmt.Errorf("load -tls-ca: %w", err)
	}
	return cert, pool, nil
}

// LoadPool reads a PEM bundle of CA certificates.
func LoadPool(file string) (*x509.CertPool, error) {
	pem, err := os.ReadFile(file)
	if err != nil {
		return nil, err
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(pem) {
		return nil, fmt.Errorf("%s holds no PEM certificate", file)
	}
	return pool, nil
}

// Configs are a node's TLS configurations.
type Configs struct {
	// API serves HTTP: the node's certificate; client certificates are
	// verified against the CA when given, and required with VerifyIncoming.
	API *tls.Config
	// PeerServer accepts Raft connections: a client certificate with the
	// server usage, signed by the CA, is required.
	PeerServer *tls.Config
	// PeerClient dials other servers (Raft, internal HTTP): it presents
	// this node's certificate and accepts only a server certificate signed
	// by the CA. Host names are not checked (servers are dialled by the
	// address they advertise); the CA and the server usage are.
	PeerClient *tls.Config
}

// Load builds a node's configurations from its files.
func Load(f Files) (*Configs, error) {
	if err := f.Check(); err != nil {
		return nil, err
	}
	cert, pool, err := f.load()
	if err != nil {
		return nil, err
	}
	api := &tls.Config{
		MinVersion:   tls.VersionTLS12,
		Certificates: []tls.Certificate{cert},
		ClientCAs:    pool,
		ClientAuth:   tls.VerifyClientCertIfGiven,
	}
	if f.VerifyIncoming {
		api.ClientAuth = tls.RequireAndVerifyClientCert
	}
	peerServer := &tls.Config{
		MinVersion:   tls.VersionTLS12,
		Certificates: []tls.Certificate{cert},
		ClientCAs:    pool,
		ClientAuth:   tls.RequireAndVerifyClientCert,
		VerifyConnection: func(cs tls.ConnectionState) error {
			return requireServerUsage(cs.PeerCertificates)
		},
	}
	peerClient := &tls.Config{
		MinVersion:   tls.VersionTLS12,
		Certificates: []tls.Certificate{cert},
		// Verified in VerifyConnection against the CA, without the host
		// name: servers are dialled by the address they advertise.
		InsecureSkipVerify: true, //nolint:gosec // chain and usage are verified below
		VerifyConnection: func(cs tls.ConnectionState) error {
			return verifyServer(cs.PeerCertificates, pool)
		},
	}
	return &Configs{API: api, PeerServer: peerServer, PeerClient: peerClient}, nil
}

// verifyServer checks a peer's chain against the CA and its server usage.
func verifyServer(chain []*x509.Certificate, pool *x509.CertPool) error {
	if len(chain) == 0 {
		return errors.New("peer sent no certificate")
	}
	inter := x509.NewCertPool()
	for _, c := range chain[1:] {
		inter.AddCert(c)
	}
	if _, err := chain[0].Verify(x509.VerifyOptions{
		Roots: pool, Intermediates: inter, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}); err != nil {
		return fmt.Errorf("peer certificate: %w", err)
	}
	return nil
}

// requireServerUsage: the client side of a server-to-server connection
// must be a server too, not an agent's client certificate.
func requireServerUsage(chain []*x509.Certificate) error {
	if len(chain) == 0 {
		return errors.New("a server certificate is required")
	}
	if !HasServerUsage(chain[0]) {
		return errors.New("peer certificate is a client certificate; servers need a server certificate")
	}
	return nil
}

// HasServerUsage reports whether a certificate may act as a server.
func HasServerUsage(c *x509.Certificate) bool {
	return slices.Contains(c.ExtKeyUsage, x509.ExtKeyUsageServerAuth) || slices.Contains(c.ExtKeyUsage, x509.ExtKeyUsageAny)
}

// Client builds a client configuration: the CA to trust (empty: the
// system's) and an optional client certificate.
func Client(caFile, certFile, keyFile string) (*tls.Config, error) {
	cfg := &tls.Config{MinVersion: tls.VersionTLS12}
	if caFile != "" {
		pool, err := LoadPool(caFile)
		if err != nil {
			return nil, fmt.Errorf("load CA certificate: %w", err)
		}
		cfg.RootCAs = pool
	}
	if (certFile == "") != (keyFile == "") {
		return nil, errors.New("-client-cert and -client-key go together")
	}
	if certFile != "" {
		cert, err := tls.LoadX509KeyPair(certFile, keyFile)
		if err != nil {
			return nil, fmt.Errorf("load client certificate: %w", err)
		}
		cfg.Certificates = []tls.Certificate{cert}
	}
	return cfg, nil
}
