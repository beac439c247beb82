package config

import "testing"

func TestValidateACME(t *testing.T) {
	tests := []struct {
		name string
		in   string
		want []string
	}{
		{"domains only", "tls:\n  acme:\n    domains: [ws.example.com]", nil},
		{"every key", `tls:
  acme:
    domains: [ws.example.com, api.example.com]
    email: ops@example.com
    directory_url: https://acme.example.net/directory
    cache_dir: /var/lib/wsgate/acme
    ca_file: /etc/wsgate/acme-ca.pem
    http_listen: ":80"
    eab_key_id: kid-1
    eab_hmac_key_env: ACME_EAB_HMAC_KEY`, nil},
		{"with mutual TLS", "tls:\n  client_ca_file: ca.pem\n  acme:\n    domains: [ws.example.com]", nil},
		{"empty", "tls:\n  acme: {}",
			[]string{`wsgate.yaml:2: tls.acme.domains: required: the names to obtain certificates for, e.g. [ws.example.com]`}},
		{"no domains", "tls:\n  acme:\n    email: ops@example.com",
			[]string{`wsgate.yaml:2: tls.acme.domains: required: the names to obtain certificates for, e.g. [ws.example.com]`}},
		{"with a certificate file", "tls:\n  cert_file: c.pem\n  key_file: k.pem\n  acme:\n    domains: [ws.example.com]",
			[]string{`wsgate.yaml:4: tls.acme: cannot be set with tls.cert_file and key_file: the certificate comes from the files or from ACME; remove one`}},
		{"on the management listener", "management:\n  tls:\n    acme:\n      domains: [ws.example.com]",
			[]string{`wsgate.yaml:3: management.tls.acme: ACME serves the client listener only: the CA checks the domain on port 443 (or 80), not on the management port; give management.tls.cert_file and management.tls.key_file`}},
		{"bad domains", "tls:\n  acme:\n    domains:\n      - '*.example.com'\n      - 192.0.2.1\n      - https://ws.example.com\n      - localhost\n      - ws.example.com.\n      - bad_name.example.com\n      - -x.example.com\n      - ''\n      - ws.example.com\n      - WS.example.com",
			[]string{
				`wsgate.yaml:4: tls.acme.domains[0]: "*.example.com" is a wildcard, which needs the dns-01 challenge; list each name`,
				`wsgate.yaml:5: tls.acme.domains[1]: "192.0.2.1" is an IP address; ACME certificates here are for domain names`,
				`wsgate.yaml:6: tls.acme.domains[2]: "https://ws.example.com" must be a bare domain name, without scheme, port or path`,
				`wsgate.yaml:7: tls.acme.domains[3]: "localhost" must have at least two labels (example.com); a CA does not issue for a single label`,
				`wsgate.yaml:8: tls.acme.domains[4]: "ws.example.com." must not end with a dot`,
				`wsgate.yaml:9: tls.acme.domains[5]: "bad_name.example.com" is not a valid domain name (letters, digits, - and .; internationalized names in their xn-- form)`,
				`wsgate.yaml:10: tls.acme.domains[6]: "-x.example.com" is not a valid domain name`,
				`wsgate.yaml:11: tls.acme.domains[7]: "" is empty`,
				`wsgate.yaml:13: tls.acme.domains[9]: "WS.example.com" is listed twice`,
			}},
		{"bad email", "tls:\n  acme:\n    domains: [ws.example.com]\n    email: ops",
			[]string{`wsgate.yaml:4: tls.acme.email: "ops" is not an email address`}},
		{"http directory", "tls:\n  acme:\n    domains: [ws.example.com]\n    directory_url: http://acme.example.net/dir",
			[]string{`wsgate.yaml:4: tls.acme.directory_url: must be an https:// URL without credentials, e.g. https://acme-v02.api.letsencrypt.org/directory`}},
		{"directory with credentials", "tls:\n  acme:\n    domains: [ws.example.com]\n    directory_url: https://u:p@acme.example.net/dir",
			[]string{`wsgate.yaml:4: tls.acme.directory_url: must be an https:// URL without credentials, e.g. https://acme-v02.api.letsencrypt.org/directory`}},
		{"bad http_listen", "tls:\n  acme:\n    domains: [ws.example.com]\n    http_listen: '80'",
			[]string{`wsgate.yaml:4: tls.acme.http_listen: "80" is not a host:port address such as ":8080" or "127.0.0.1:8080"`}},
		{"EAB key id alone", "tls:\n  acme:\n    domains: [ws.example.com]\n    eab_key_id: kid",
			[]string{`wsgate.yaml:4: tls.acme.eab_key_id: eab_key_id and eab_hmac_key_env go together: the CA gives both`}},
		{"EAB key inline", "tls:\n  acme:\n    domains: [ws.example.com]\n    eab_key_id: kid\n    eab_hmac_key_env: abc-DEF_123=",
			[]string{`wsgate.yaml:5: tls.acme.eab_hmac_key_env: must be the name of an environment variable (letters, digits and _), not its value`}},
		{"unknown key", "tls:\n  acme:\n    domains: [ws.example.com]\n    challenge: dns-01",
			[]string{`wsgate.yaml:4: unknown key "challenge" in tls.acme`}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) { checkProblems(t, tt.in, tt.want...) })
	}
}

func TestACMEDefaults(t *testing.T) {
	c, err := Parse("wsgate.yaml", []byte("tls:\n  acme:\n    domains: [ws.example.com]"))
	if err != nil {
		t.Fatal(err)
	}
	a := c.TLS.ACME
	if !c.TLS.Enabled() || a.DirectoryURL != LetsEncryptURL || a.HTTPListen != "" || a.CacheDir != "" {
		t.Errorf("tls = %+v; want enabled, Let's Encrypt, no http-01 listener, the cache directory left to the machine", c.TLS)
	}
	if c.Management.TLS.ACME.Configured() {
		t.Errorf("management.tls.acme is configured: %+v", c.Management.TLS.ACME)
	}
}
