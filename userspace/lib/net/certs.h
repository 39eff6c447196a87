// A site's certificates, made with the OpenSSL API so an operator needs no
// openssl recipes: a CA per site, and node certificates it signs (P-256,
// SHA-256, the node's name as CN and DNS subjectAltName).
#pragma once

#include <string>

namespace hrl {

struct CertPaths {
  std::string cert;  // PEM certificate
  std::string key;   // PEM private key, mode 0600
};

// Validity window in seconds relative to now (tests make expired ones).
struct Validity {
  long not_before = -300;
  long not_after = 10L * 365 * 24 * 3600;
};

// A self-signed site CA.
void make_ca(const std::string& name, const CertPaths& out, Validity v = {});
// A node certificate signed by the CA, usable as TLS client and server.
void issue_cert(const CertPaths& ca, const std::string& node, const CertPaths& out, Validity v = {});

}  // namespace hrl
