package awsevent

import (
	"crypto/x509"
	"encoding/hex"
	"encoding/pem"
	"strings"

	"github.com/aws/aws-lambda-go/events"
)

// ClientCert is requestContext.identity.clientCert, the certificate a client
// presented with mutual TLS.
type ClientCert = events.APIGatewayCustomAuthorizerRequestTypeRequestIdentityClientCert

// certTimeLayout is the format of clientCert.validity's dates, OpenSSL's
// ("May 28 12:30:02 2019 GMT", the day padded with a space), as AWS shows
// them.
const certTimeLayout = "Jan _2 15:04:05 2006 GMT"

// NewClientCert returns the clientCert of certificate c as AWS shows it:
// the PEM, the subject and issuer distinguished names (RFC 2253), the
// serial number as colon-separated hex bytes and the validity dates.
func NewClientCert(c *x509.Certificate) *ClientCert {
	return &ClientCert{
		ClientCertPem: string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: c.Raw})),
		SubjectDN:     c.Subject.String(),
		IssuerDN:      c.Issuer.String(),
		SerialNumber:  serialHex(c),
		Validity: events.APIGatewayCustomAuthorizerRequestTypeRequestIdentityClientCertValidity{
			NotBefore: c.NotBefore.UTC().Format(certTimeLayout),
			NotAfter:  c.NotAfter.UTC().Format(certTimeLayout),
		},
	}
}

// serialHex formats the serial number as lower-case hex bytes joined by
// colons, "a1:a1:…".
func serialHex(c *x509.Certificate) string {
	if c.SerialNumber == nil {
		return ""
	}
	b := c.SerialNumber.Bytes()
	if len(b) == 0 {
		b = []byte{0}
	}
	parts := make([]string, len(b))
	for i, v := range b {
		parts[i] = hex.EncodeToString([]byte{v})
	}
	return strings.Join(parts, ":")
}
