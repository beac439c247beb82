package config

import "testing"

func TestValidateTLS(t *testing.T) {
	tests := []struct {
		name string
		in   string
		want []string
	}{
		{"pair", "tls: {cert_file: c.pem, key_file: k.pem}", nil},
		{"cert without key", "tls:\n  cert_file: c.pem",
			[]string{`wsgate.yaml:2: tls.cert_file: needs tls.key_file, the certificate's private key`}},
		{"key without cert", "tls:\n  key_file: k.pem",
			[]string{`wsgate.yaml:2: tls.key_file: needs tls.cert_file, the certificate of this key`}},
		{"client CA without TLS", "tls:\n  client_ca_file: ca.pem",
			[]string{`wsgate.yaml:2: tls.client_ca_file: mutual TLS needs TLS: set tls.cert_file and tls.key_file, or tls.acme`}},
		{"client auth unknown", "tls:\n  cert_file: c.pem\n  key_file: k.pem\n  client_ca_file: ca.pem\n  client_auth: optional",
			[]string{`wsgate.yaml:5: tls.client_auth: unknown value "optional"; one of require, request`}},
		{"client auth without CA", "tls:\n  cert_file: c.pem\n  key_file: k.pem\n  client_auth: request",
			[]string{`wsgate.yaml:4: tls.client_auth: needs tls.client_ca_file, the CAs that sign client certificates`}},
		{"mutual TLS", "tls:\n  cert_file: c.pem\n  key_file: k.pem\n  client_ca_file: ca.pem\n  client_auth: request", nil},
		{"management cert without key", "management:\n  tls:\n    cert_file: c.pem",
			[]string{`wsgate.yaml:3: management.tls.cert_file: needs management.tls.key_file, the certificate's private key`}},
		{"management mutual TLS", "management:\n  tls: {cert_file: c.pem, key_file: k.pem, client_ca_file: ca.pem}", nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) { checkProblems(t, tt.in, tt.want...) })
	}
}

func TestTLSDefaults(t *testing.T) {
	c, err := Parse("wsgate.yaml", []byte("tls: {cert_file: c.pem, key_file: k.pem, client_ca_file: ca.pem}"))
	if err != nil {
		t.Fatal(err)
	}
	if !c.TLS.Enabled() || c.TLS.ClientAuth != ClientAuthRequire {
		t.Errorf("tls = %+v; want enabled with client_auth require", c.TLS)
	}
	if c.Management.TLS.Enabled() || c.Management.TLS.ClientAuth != "" {
		t.Errorf("management.tls = %+v; want off", c.Management.TLS)
	}
	d, err := Parse("wsgate.yaml", []byte("tls: {cert_file: c.pem, key_file: k.pem}"))
	if err != nil {
		t.Fatal(err)
	}
	if d.TLS.ClientAuth != "" {
		t.Errorf("client_auth without a CA = %q; want empty", d.TLS.ClientAuth)
	}
}
