#include "tls/x509.hpp"

#include <arpa/inet.h>
#include <sys/socket.h>

#include <array>
#include <climits>
#include <cstdio>
#include <memory>
#include <string_view>

#include <openssl/asn1.h>
#include <openssl/bio.h>
#include <openssl/buffer.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

namespace linesman::tls {

namespace {

struct x509_free {
  void operator()(X509* p) const { X509_free(p); }
};
struct bio_free {
  void operator()(BIO* p) const { BIO_free(p); }
};
struct names_free {
  void operator()(GENERAL_NAMES* p) const { GENERAL_NAMES_free(p); }
};

// name_text: an X509_NAME in RFC 2253 form. XN_FLAG_RFC2253 escapes control characters and
// multi-byte characters as \XX, so the result is printable ASCII.
std::string name_text(const X509_NAME* name) {
  std::unique_ptr<BIO, bio_free> bio(BIO_new(BIO_s_mem()));
  if (!bio || name == nullptr || X509_NAME_print_ex(bio.get(), name, 0, XN_FLAG_RFC2253) < 0) {
    return {};
  }
  BUF_MEM* mem = nullptr;
  BIO_get_mem_ptr(bio.get(), &mem);
  if (mem == nullptr || mem->data == nullptr) {
    return {};
  }
  return {mem->data, mem->length};
}

// printable: `bytes` with anything outside printable ASCII written as \xNN.
std::string printable(std::string_view bytes) {
  std::string out;
  out.reserve(bytes.size());
  for (char c : bytes) {
    const auto u = static_cast<unsigned char>(c);
    if (u >= 0x20 && u < 0x7f && c != '\\') {
      out.push_back(c);
    } else {
      std::array<char, 5> buf{};
      std::snprintf(buf.data(), buf.size(), "\\x%02x", u);
      out.append(buf.data(), 4);
    }
  }
  return out;
}

// ip_text: an iPAddress SAN (4 or 16 bytes) in the usual text form; empty for other lengths
// (a name constraint's address/mask pair never appears in a SAN).
std::string ip_text(const ASN1_OCTET_STRING* ip) {
  const int len = ASN1_STRING_length(ip);
  const int family = len == 4 ? AF_INET : len == 16 ? AF_INET6 : AF_UNSPEC;
  std::array<char, INET6_ADDRSTRLEN> buf{};
  if (family == AF_UNSPEC ||
      inet_ntop(family, ASN1_STRING_get0_data(ip), buf.data(), buf.size()) == nullptr) {
    return {};
  }
  return buf.data();
}

}  // namespace

bool describe_certificate(std::span<const std::uint8_t> der, certificate_names& out) {
  out = certificate_names{};
  if (der.empty() || der.size() > static_cast<std::size_t>(LONG_MAX)) {
    return false;
  }
  const unsigned char* p = der.data();
  std::unique_ptr<X509, x509_free> cert(d2i_X509(nullptr, &p, static_cast<long>(der.size())));
  // Exactly one certificate: d2i must consume every byte.
  if (!cert || static_cast<std::size_t>(p - der.data()) != der.size()) {
    return false;
  }
  out.subject = name_text(X509_get_subject_name(cert.get()));
  out.issuer = name_text(X509_get_issuer_name(cert.get()));
  std::unique_ptr<GENERAL_NAMES, names_free> sans(static_cast<GENERAL_NAMES*>(
      X509_get_ext_d2i(cert.get(), NID_subject_alt_name, nullptr, nullptr)));
  if (sans) {
    for (int i = 0; i < sk_GENERAL_NAME_num(sans.get()); ++i) {
      const GENERAL_NAME* gn = sk_GENERAL_NAME_value(sans.get(), i);
      int type = 0;
      const void* value = GENERAL_NAME_get0_value(gn, &type);
      if (type == GEN_DNS) {
        const auto* s = static_cast<const ASN1_IA5STRING*>(value);
        out.san.push_back(
            printable(std::string_view(reinterpret_cast<const char*>(ASN1_STRING_get0_data(s)),
                                       static_cast<std::size_t>(ASN1_STRING_length(s)))));
      } else if (type == GEN_IPADD) {
        std::string ip = ip_text(static_cast<const ASN1_OCTET_STRING*>(value));
        if (!ip.empty()) {
          out.san.push_back(std::move(ip));
        }
      }
    }
  }
  return true;
}

}  // namespace linesman::tls
