// Real TLS 1.3 on loopback: mutual authentication against the site CA, and
// what is refused: another CA's certificate, an expired one, the wrong node,
// plain TCP. The server goes on serving after each refusal.
#include <gtest/gtest.h>

#include <cstring>
#include <future>
#include <thread>

#include "net/certs.h"
#include "net/messages.h"
#include "net/tls.h"
#include "test_support.h"

namespace hrl {
namespace {

using namespace std::chrono_literals;

class Tls : public ::testing::Test {
 protected:
  test::TempDir dir;
  CertPaths ca{dir.file("ca.pem"), dir.file("ca.key")};
  CertPaths other_ca{dir.file("other-ca.pem"), dir.file("other-ca.key")};

  void SetUp() override {
    make_ca("site-a", ca);
    make_ca("elsewhere", other_ca);
  }
  TlsConfig node(const std::string& name, const CertPaths& by, Validity v = {}) {
    CertPaths out{dir.file(name + ".pem"), dir.file(name + ".key")};
    issue_cert(by, name, out, v);
    return {out.cert, out.key, ca.cert};  // every node trusts site-a's CA
  }

  // Serves one connection: handshake, then echo one DURABLE frame +1.
  // Returns the server's error, or "" when it served.
  std::future<std::string> serve_once(Listener& l, const TlsConfig& cfg) {
    return std::async(std::launch::async, [&l, cfg] {
      try {
        TlsContext ctx(TlsContext::Role::Server, cfg);
        Socket s = l.accept(5s);
        if (s.fd() < 0) return std::string("no connection");
        TlsStream t(ctx, std::move(s), {}, 5s);
        auto f = t.receive();
        t.send(proto::FrameType::Durable, proto::encode(proto::Durable{proto::decode_durable(f.payload).seq + 1}));
        return std::string();
      } catch (const std::exception& e) {
        return std::string(e.what());
      }
    });
  }

  // The client's side of one exchange; its error or "".
  std::string exchange(uint16_t port, const TlsConfig& cfg, const std::string& peer_name) {
    try {
      TlsContext ctx(TlsContext::Role::Client, cfg);
      TlsStream t(ctx, connect_tcp("127.0.0.1:" + std::to_string(port), 5s), peer_name, 5s);
      t.send(proto::FrameType::Durable, proto::encode(proto::Durable{41}));
      auto f = t.receive();
      EXPECT_EQ(proto::decode_durable(f.payload).seq, 42u);
      EXPECT_EQ(t.peer(), peer_name);
      return {};
    } catch (const std::exception& e) {
      return e.what();
    }
  }
};

TEST_F(Tls, NodesOfTheSiteAuthenticateEachOther) {
  Listener l("127.0.0.1:0");
  auto server = serve_once(l, node("secondary", ca));
  EXPECT_EQ(exchange(l.port(), node("primary", ca), "secondary"), "");
  EXPECT_EQ(server.get(), "");
}

TEST_F(Tls, RefusesWhatTheSiteDidNotSign) {
  Listener l("127.0.0.1:0");
  TlsConfig secondary = node("secondary", ca);

  auto server = serve_once(l, secondary);  // a client certificate from another CA
  EXPECT_NE(exchange(l.port(), node("intruder", other_ca), "secondary"), "");
  std::string why = server.get();
  EXPECT_NE(why.find("certificate verify failed"), std::string::npos) << why;

  server = serve_once(l, secondary);  // an expired client certificate of the right CA
  EXPECT_NE(exchange(l.port(), node("old-primary", ca, {-7200, -3600}), "secondary"), "");
  why = server.get();
  EXPECT_NE(why.find("certificate has expired"), std::string::npos) << why;

  server = serve_once(l, secondary);  // the right CA, but not the node the client meant
  why = exchange(l.port(), node("primary", ca), "another-secondary");
  EXPECT_NE(why.find("hostname mismatch"), std::string::npos) << why;
  EXPECT_NE(server.get(), "");

  server = serve_once(l, secondary);  // plain TCP: no handshake
  {
    Socket s = connect_tcp("127.0.0.1:" + std::to_string(l.port()), 5s);
    const char junk[] = "HELLO I AM NOT TLS\r\n\r\n";
    ASSERT_GT(::write(s.fd(), junk, sizeof junk), 0);
  }
  why = server.get();
  EXPECT_NE(why.find("TLS handshake"), std::string::npos) << why;

  server = serve_once(l, secondary);  // and the server still serves the site
  EXPECT_EQ(exchange(l.port(), node("primary", ca), "secondary"), "");
  EXPECT_EQ(server.get(), "");
}

TEST_F(Tls, BadFilesGetClearErrors) {
  TlsConfig cfg = node("primary", ca);
  cfg.key = dir.file("missing.key");
  try {
    TlsContext ctx(TlsContext::Role::Client, cfg);
    FAIL() << "loaded a missing key";
  } catch (const std::runtime_error& e) {
    EXPECT_NE(std::string(e.what()).find("missing.key"), std::string::npos) << e.what();
  }
  cfg = node("primary", ca);
  cfg.key = other_ca.key;
  EXPECT_THROW(TlsContext(TlsContext::Role::Client, cfg), std::runtime_error);  // key of another certificate
}

}  // namespace
}  // namespace hrl
