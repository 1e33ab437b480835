#include "tls/names.hpp"

#include "tls/hex.hpp"

namespace linesman::tls {

code_name code_name::named(std::string_view static_name) {
  code_name out;
  out.static_ = static_name;
  out.known_ = true;
  return out;
}

code_name code_name::hex16(std::uint16_t code) {
  code_name out;
  out.hex_ = {'0',
              'x',
              hex_digit(static_cast<unsigned>(code) >> 12U),
              hex_digit(static_cast<unsigned>(code) >> 8U),
              hex_digit(static_cast<unsigned>(code) >> 4U),
              hex_digit(code)};
  out.hex_len_ = 6;
  return out;
}

code_name code_name::hex8(std::uint8_t code) {
  code_name out;
  out.hex_ = {'0', 'x', hex_digit(static_cast<unsigned>(code) >> 4U), hex_digit(code), '\0', '\0'};
  out.hex_len_ = 4;
  return out;
}

std::string_view find_version_name(std::uint16_t version) {
  switch (version) {
    case kTls13:
      return "1.3";
    case kTls12:
      return "1.2";
    case kTls11:
      return "1.1";
    case kTls10:
      return "1.0";
    case kSsl30:
      return "SSL 3.0";
    default:
      return {};
  }
}

code_name version_name(std::uint16_t version) {
  const std::string_view name = find_version_name(version);
  return name.empty() ? code_name::hex16(version) : code_name::named(name);
}

// The IANA "TLS Cipher Suites" registry entries that real clients and servers still send: every
// TLS 1.3 suite, the ECDHE/DHE/RSA AES-GCM, ChaCha20, CCM and CBC suites, the legacy 3DES/RC4 ones
// a scanner may offer, PSK suites, and the two signalling values.
std::string_view find_cipher_suite_name(std::uint16_t suite) {
  switch (suite) {
    case 0x0000:
      return "TLS_NULL_WITH_NULL_NULL";
    case 0x0001:
      return "TLS_RSA_WITH_NULL_MD5";
    case 0x0002:
      return "TLS_RSA_WITH_NULL_SHA";
    case 0x0004:
      return "TLS_RSA_WITH_RC4_128_MD5";
    case 0x0005:
      return "TLS_RSA_WITH_RC4_128_SHA";
    case 0x0009:
      return "TLS_RSA_WITH_DES_CBC_SHA";
    case 0x000a:
      return "TLS_RSA_WITH_3DES_EDE_CBC_SHA";
    case 0x0013:
      return "TLS_DHE_DSS_WITH_3DES_EDE_CBC_SHA";
    case 0x0016:
      return "TLS_DHE_RSA_WITH_3DES_EDE_CBC_SHA";
    case 0x002f:
      return "TLS_RSA_WITH_AES_128_CBC_SHA";
    case 0x0032:
      return "TLS_DHE_DSS_WITH_AES_128_CBC_SHA";
    case 0x0033:
      return "TLS_DHE_RSA_WITH_AES_128_CBC_SHA";
    case 0x0035:
      return "TLS_RSA_WITH_AES_256_CBC_SHA";
    case 0x0038:
      return "TLS_DHE_DSS_WITH_AES_256_CBC_SHA";
    case 0x0039:
      return "TLS_DHE_RSA_WITH_AES_256_CBC_SHA";
    case 0x003b:
      return "TLS_RSA_WITH_NULL_SHA256";
    case 0x003c:
      return "TLS_RSA_WITH_AES_128_CBC_SHA256";
    case 0x003d:
      return "TLS_RSA_WITH_AES_256_CBC_SHA256";
    case 0x0040:
      return "TLS_DHE_DSS_WITH_AES_128_CBC_SHA256";
    case 0x0041:
      return "TLS_RSA_WITH_CAMELLIA_128_CBC_SHA";
    case 0x0045:
      return "TLS_DHE_RSA_WITH_CAMELLIA_128_CBC_SHA";
    case 0x0067:
      return "TLS_DHE_RSA_WITH_AES_128_CBC_SHA256";
    case 0x006a:
      return "TLS_DHE_DSS_WITH_AES_256_CBC_SHA256";
    case 0x006b:
      return "TLS_DHE_RSA_WITH_AES_256_CBC_SHA256";
    case 0x0084:
      return "TLS_RSA_WITH_CAMELLIA_256_CBC_SHA";
    case 0x0088:
      return "TLS_DHE_RSA_WITH_CAMELLIA_256_CBC_SHA";
    case 0x008c:
      return "TLS_PSK_WITH_AES_128_CBC_SHA";
    case 0x008d:
      return "TLS_PSK_WITH_AES_256_CBC_SHA";
    case 0x009c:
      return "TLS_RSA_WITH_AES_128_GCM_SHA256";
    case 0x009d:
      return "TLS_RSA_WITH_AES_256_GCM_SHA384";
    case 0x009e:
      return "TLS_DHE_RSA_WITH_AES_128_GCM_SHA256";
    case 0x009f:
      return "TLS_DHE_RSA_WITH_AES_256_GCM_SHA384";
    case 0x00a2:
      return "TLS_DHE_DSS_WITH_AES_128_GCM_SHA256";
    case 0x00a3:
      return "TLS_DHE_DSS_WITH_AES_256_GCM_SHA384";
    case 0x00a8:
      return "TLS_PSK_WITH_AES_128_GCM_SHA256";
    case 0x00a9:
      return "TLS_PSK_WITH_AES_256_GCM_SHA384";
    case 0x00aa:
      return "TLS_DHE_PSK_WITH_AES_128_GCM_SHA256";
    case 0x00ab:
      return "TLS_DHE_PSK_WITH_AES_256_GCM_SHA384";
    case 0x00ae:
      return "TLS_PSK_WITH_AES_128_CBC_SHA256";
    case 0x00af:
      return "TLS_PSK_WITH_AES_256_CBC_SHA384";
    case 0x00ff:
      return "TLS_EMPTY_RENEGOTIATION_INFO_SCSV";
    case 0x1301:
      return "TLS_AES_128_GCM_SHA256";
    case 0x1302:
      return "TLS_AES_256_GCM_SHA384";
    case 0x1303:
      return "TLS_CHACHA20_POLY1305_SHA256";
    case 0x1304:
      return "TLS_AES_128_CCM_SHA256";
    case 0x1305:
      return "TLS_AES_128_CCM_8_SHA256";
    case 0x5600:
      return "TLS_FALLBACK_SCSV";
    case 0xc007:
      return "TLS_ECDHE_ECDSA_WITH_RC4_128_SHA";
    case 0xc008:
      return "TLS_ECDHE_ECDSA_WITH_3DES_EDE_CBC_SHA";
    case 0xc009:
      return "TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA";
    case 0xc00a:
      return "TLS_ECDHE_ECDSA_WITH_AES_256_CBC_SHA";
    case 0xc011:
      return "TLS_ECDHE_RSA_WITH_RC4_128_SHA";
    case 0xc012:
      return "TLS_ECDHE_RSA_WITH_3DES_EDE_CBC_SHA";
    case 0xc013:
      return "TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA";
    case 0xc014:
      return "TLS_ECDHE_RSA_WITH_AES_256_CBC_SHA";
    case 0xc023:
      return "TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA256";
    case 0xc024:
      return "TLS_ECDHE_ECDSA_WITH_AES_256_CBC_SHA384";
    case 0xc027:
      return "TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA256";
    case 0xc028:
      return "TLS_ECDHE_RSA_WITH_AES_256_CBC_SHA384";
    case 0xc02b:
      return "TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256";
    case 0xc02c:
      return "TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384";
    case 0xc02f:
      return "TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256";
    case 0xc030:
      return "TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384";
    case 0xc035:
      return "TLS_ECDHE_PSK_WITH_AES_128_CBC_SHA";
    case 0xc036:
      return "TLS_ECDHE_PSK_WITH_AES_256_CBC_SHA";
    case 0xc09c:
      return "TLS_RSA_WITH_AES_128_CCM";
    case 0xc09d:
      return "TLS_RSA_WITH_AES_256_CCM";
    case 0xc09e:
      return "TLS_DHE_RSA_WITH_AES_128_CCM";
    case 0xc09f:
      return "TLS_DHE_RSA_WITH_AES_256_CCM";
    case 0xc0a0:
      return "TLS_RSA_WITH_AES_128_CCM_8";
    case 0xc0a1:
      return "TLS_RSA_WITH_AES_256_CCM_8";
    case 0xc0ac:
      return "TLS_ECDHE_ECDSA_WITH_AES_128_CCM";
    case 0xc0ad:
      return "TLS_ECDHE_ECDSA_WITH_AES_256_CCM";
    case 0xc0ae:
      return "TLS_ECDHE_ECDSA_WITH_AES_128_CCM_8";
    case 0xc0af:
      return "TLS_ECDHE_ECDSA_WITH_AES_256_CCM_8";
    case 0xcca8:
      return "TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256";
    case 0xcca9:
      return "TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256";
    case 0xccaa:
      return "TLS_DHE_RSA_WITH_CHACHA20_POLY1305_SHA256";
    case 0xccab:
      return "TLS_PSK_WITH_CHACHA20_POLY1305_SHA256";
    case 0xccac:
      return "TLS_ECDHE_PSK_WITH_CHACHA20_POLY1305_SHA256";
    case 0xccad:
      return "TLS_DHE_PSK_WITH_CHACHA20_POLY1305_SHA256";
    case 0xccae:
      return "TLS_RSA_PSK_WITH_CHACHA20_POLY1305_SHA256";
    case 0xd001:
      return "TLS_ECDHE_PSK_WITH_AES_128_GCM_SHA256";
    case 0xd002:
      return "TLS_ECDHE_PSK_WITH_AES_256_GCM_SHA384";
    default:
      return {};
  }
}

code_name cipher_suite_name(std::uint16_t suite) {
  const std::string_view name = find_cipher_suite_name(suite);
  return name.empty() ? code_name::hex16(suite) : code_name::named(name);
}

// The IANA "TLS Supported Groups" registry (RFC 8422, RFC 7919, RFC 8446, the ML-KEM drafts),
// plus the two Kyber draft code points Chrome and Firefox sent before ML-KEM was standardized.
std::string_view find_group_name(std::uint16_t group) {
  switch (group) {
    case 0x0001:
      return "sect163k1";
    case 0x0002:
      return "sect163r1";
    case 0x0003:
      return "sect163r2";
    case 0x0004:
      return "sect193r1";
    case 0x0005:
      return "sect193r2";
    case 0x0006:
      return "sect233k1";
    case 0x0007:
      return "sect233r1";
    case 0x0008:
      return "sect239k1";
    case 0x0009:
      return "sect283k1";
    case 0x000a:
      return "sect283r1";
    case 0x000b:
      return "sect409k1";
    case 0x000c:
      return "sect409r1";
    case 0x000d:
      return "sect571k1";
    case 0x000e:
      return "sect571r1";
    case 0x000f:
      return "secp160k1";
    case 0x0010:
      return "secp160r1";
    case 0x0011:
      return "secp160r2";
    case 0x0012:
      return "secp192k1";
    case 0x0013:
      return "secp192r1";
    case 0x0014:
      return "secp224k1";
    case 0x0015:
      return "secp224r1";
    case 0x0016:
      return "secp256k1";
    case 0x0017:
      return "secp256r1";
    case 0x0018:
      return "secp384r1";
    case 0x0019:
      return "secp521r1";
    case 0x001a:
      return "brainpoolP256r1";
    case 0x001b:
      return "brainpoolP384r1";
    case 0x001c:
      return "brainpoolP512r1";
    case 0x001d:
      return "x25519";
    case 0x001e:
      return "x448";
    case 0x001f:
      return "brainpoolP256r1tls13";
    case 0x0020:
      return "brainpoolP384r1tls13";
    case 0x0021:
      return "brainpoolP512r1tls13";
    case 0x0022:
      return "GC256A";
    case 0x0023:
      return "GC256B";
    case 0x0024:
      return "GC256C";
    case 0x0025:
      return "GC256D";
    case 0x0026:
      return "GC512A";
    case 0x0027:
      return "GC512B";
    case 0x0028:
      return "GC512C";
    case 0x0029:
      return "curveSM2";
    case 0x0100:
      return "ffdhe2048";
    case 0x0101:
      return "ffdhe3072";
    case 0x0102:
      return "ffdhe4096";
    case 0x0103:
      return "ffdhe6144";
    case 0x0104:
      return "ffdhe8192";
    case 0x0200:
      return "MLKEM512";
    case 0x0201:
      return "MLKEM768";
    case 0x0202:
      return "MLKEM1024";
    case 0x11eb:
      return "SecP256r1MLKEM768";
    case 0x11ec:
      return "X25519MLKEM768";
    case 0x11ed:
      return "SecP384r1MLKEM1024";
    case 0x11ee:
      return "curveSM2MLKEM768";
    case 0x6399:
      return "X25519Kyber768Draft00";
    case 0x639a:
      return "SecP256r1Kyber768Draft00";
    case 0xff01:
      return "arbitrary_explicit_prime_curves";
    case 0xff02:
      return "arbitrary_explicit_char2_curves";
    default:
      return {};
  }
}

code_name group_name(std::uint16_t group) {
  if (is_grease(group)) {
    return code_name::named("grease");
  }
  const std::string_view name = find_group_name(group);
  return name.empty() ? code_name::hex16(group) : code_name::named(name);
}

bool is_post_quantum_group(std::uint16_t group) {
  switch (group) {
    case 0x0200:
    case 0x0201:
    case 0x0202:
    case 0x11eb:
    case 0x11ec:
    case 0x11ed:
    case 0x11ee:
    case 0x6399:
    case 0x639a:
      return true;
    default:
      return false;
  }
}

std::string_view find_alert_level_name(std::uint8_t level) {
  switch (level) {
    case kAlertWarning:
      return "warning";
    case kAlertFatal:
      return "fatal";
    default:
      return {};
  }
}

code_name alert_level_name(std::uint8_t level) {
  const std::string_view name = find_alert_level_name(level);
  return name.empty() ? code_name::hex8(level) : code_name::named(name);
}

// RFC 8446 section 6 (AlertDescription), plus the values TLS 1.3 dropped but older peers still
// send: decryption_failed, decompression_failure, no_certificate (SSL 3.0), export_restriction,
// no_renegotiation (RFC 5246), certificate_unobtainable and bad_certificate_hash_value (RFC 6066).
std::string_view find_alert_description_name(std::uint8_t description) {
  switch (description) {
    case 0:
      return "close_notify";
    case 10:
      return "unexpected_message";
    case 20:
      return "bad_record_mac";
    case 21:
      return "decryption_failed";
    case 22:
      return "record_overflow";
    case 30:
      return "decompression_failure";
    case 40:
      return "handshake_failure";
    case 41:
      return "no_certificate";
    case 42:
      return "bad_certificate";
    case 43:
      return "unsupported_certificate";
    case 44:
      return "certificate_revoked";
    case 45:
      return "certificate_expired";
    case 46:
      return "certificate_unknown";
    case 47:
      return "illegal_parameter";
    case 48:
      return "unknown_ca";
    case 49:
      return "access_denied";
    case 50:
      return "decode_error";
    case 51:
      return "decrypt_error";
    case 60:
      return "export_restriction";
    case 70:
      return "protocol_version";
    case 71:
      return "insufficient_security";
    case 80:
      return "internal_error";
    case 86:
      return "inappropriate_fallback";
    case 90:
      return "user_canceled";
    case 100:
      return "no_renegotiation";
    case 109:
      return "missing_extension";
    case 110:
      return "unsupported_extension";
    case 111:
      return "certificate_unobtainable";
    case 112:
      return "unrecognized_name";
    case 113:
      return "bad_certificate_status_response";
    case 114:
      return "bad_certificate_hash_value";
    case 115:
      return "unknown_psk_identity";
    case 116:
      return "certificate_required";
    case 120:
      return "no_application_protocol";
    case 121:
      return "ech_required";
    default:
      return {};
  }
}

code_name alert_description_name(std::uint8_t description) {
  const std::string_view name = find_alert_description_name(description);
  return name.empty() ? code_name::hex8(description) : code_name::named(name);
}

}  // namespace linesman::tls
