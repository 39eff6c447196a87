#include "net/certs.h"

#include <fcntl.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/x509v3.h>
#include <sys/stat.h>

#include <cstdio>
#include <memory>
#include <stdexcept>

#include "io/file.h"

namespace hrl {
namespace {

struct Free {
  void operator()(EVP_PKEY* p) const { EVP_PKEY_free(p); }
  void operator()(X509* p) const { X509_free(p); }
  void operator()(FILE* f) const { fclose(f); }
};
using Key = std::unique_ptr<EVP_PKEY, Free>;
using Cert = std::unique_ptr<X509, Free>;
using Stdio = std::unique_ptr<FILE, Free>;

[[noreturn]] void ssl_fail(const std::string& what) {
  char buf[256];
  ERR_error_string_n(ERR_get_error(), buf, sizeof buf);
  throw std::runtime_error(what + ": " + buf);
}

Stdio open_out(const std::string& path, mode_t mode) {
  int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode);
  if (fd < 0) throw_errno(errno, "create " + path);
  fchmod(fd, mode);
  return Stdio(fdopen(fd, "w"));
}

void save(const CertPaths& out, X509* cert, EVP_PKEY* key) {
  Stdio k = open_out(out.key, 0600);
  if (!PEM_write_PrivateKey(k.get(), key, nullptr, nullptr, 0, nullptr, nullptr)) ssl_fail("write " + out.key);
  Stdio c = open_out(out.cert, 0644);
  if (!PEM_write_X509(c.get(), cert)) ssl_fail("write " + out.cert);
}

Key load_key(const std::string& path) {
  Stdio f(fopen(path.c_str(), "r"));
  if (!f) throw_errno(errno, "open " + path);
  Key k(PEM_read_PrivateKey(f.get(), nullptr, nullptr, nullptr));
  if (!k) ssl_fail("read key " + path);
  return k;
}

Cert load_cert(const std::string& path) {
  Stdio f(fopen(path.c_str(), "r"));
  if (!f) throw_errno(errno, "open " + path);
  Cert c(PEM_read_X509(f.get(), nullptr, nullptr, nullptr));
  if (!c) ssl_fail("read certificate " + path);
  return c;
}

void add_ext(X509* cert, X509* issuer, int nid, const char* value) {
  X509V3_CTX ctx;
  X509V3_set_ctx_nodb(&ctx);
  X509V3_set_ctx(&ctx, issuer, cert, nullptr, nullptr, 0);
  X509_EXTENSION* ext = X509V3_EXT_conf_nid(nullptr, &ctx, nid, value);
  if (!ext || !X509_add_ext(cert, ext, -1)) ssl_fail("certificate extension");
  X509_EXTENSION_free(ext);
}

Cert new_cert(const std::string& cn, EVP_PKEY* key, Validity v) {
  Cert cert(X509_new());
  X509_set_version(cert.get(), 2);
  unsigned char serial[16];
  RAND_bytes(serial, sizeof serial);
  serial[0] &= 0x7f;
  BIGNUM* bn = BN_bin2bn(serial, sizeof serial, nullptr);
  BN_to_ASN1_INTEGER(bn, X509_get_serialNumber(cert.get()));
  BN_free(bn);
  X509_gmtime_adj(X509_getm_notBefore(cert.get()), v.not_before);
  X509_gmtime_adj(X509_getm_notAfter(cert.get()), v.not_after);
  X509_set_pubkey(cert.get(), key);
  X509_NAME* name = X509_get_subject_name(cert.get());
  X509_NAME_add_entry_by_txt(name, "O", MBSTRING_ASC, reinterpret_cast<const unsigned char*>("hrl"), -1, -1, 0);
  X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC, reinterpret_cast<const unsigned char*>(cn.c_str()), -1, -1, 0);
  return cert;
}

}  // namespace

void make_ca(const std::string& name, const CertPaths& out, Validity v) {
  Key key(EVP_EC_gen("P-256"));
  if (!key) ssl_fail("generate the CA key");
  Cert cert = new_cert(name, key.get(), v);
  X509_set_issuer_name(cert.get(), X509_get_subject_name(cert.get()));
  add_ext(cert.get(), cert.get(), NID_basic_constraints, "critical,CA:TRUE,pathlen:0");
  add_ext(cert.get(), cert.get(), NID_key_usage, "critical,keyCertSign,cRLSign");
  add_ext(cert.get(), cert.get(), NID_subject_key_identifier, "hash");
  if (!X509_sign(cert.get(), key.get(), EVP_sha256())) ssl_fail("sign the CA certificate");
  save(out, cert.get(), key.get());
}

void issue_cert(const CertPaths& ca, const std::string& node, const CertPaths& out, Validity v) {
  Key ca_key = load_key(ca.key);
  Cert ca_cert = load_cert(ca.cert);
  Key key(EVP_EC_gen("P-256"));
  if (!key) ssl_fail("generate the node key");
  Cert cert = new_cert(node, key.get(), v);
  X509_set_issuer_name(cert.get(), X509_get_subject_name(ca_cert.get()));
  add_ext(cert.get(), ca_cert.get(), NID_basic_constraints, "critical,CA:FALSE");
  add_ext(cert.get(), ca_cert.get(), NID_key_usage, "critical,digitalSignature");
  add_ext(cert.get(), ca_cert.get(), NID_ext_key_usage, "serverAuth,clientAuth");
  add_ext(cert.get(), ca_cert.get(), NID_subject_alt_name, ("DNS:" + node).c_str());
  if (!X509_sign(cert.get(), ca_key.get(), EVP_sha256())) ssl_fail("sign the certificate of " + node);
  save(out, cert.get(), key.get());
}

}  // namespace hrl
