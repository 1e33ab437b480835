#include "tls/fingerprint.hpp"

#include "tls/byte_reader.hpp"
#include "tls/hex.hpp"
#include "tls/names.hpp"

#include <algorithm>
#include <array>
#include <cstdint>
#include <memory>
#include <span>
#include <string_view>
#include <vector>

#include <openssl/evp.h>

namespace linesman::tls {

namespace {

// The fingerprints run once per TLS connection, so they build each output string in place, sized
// once from the list lengths, with no string or vector per list or element (bench/tls_bench.cpp,
// BM_ours_parse_fingerprints_corpus, measures them).

constexpr std::string_view kZeroHash = "000000000000";
constexpr std::size_t kJa4HashLen = 12;
constexpr std::size_t kJa4ASize = 10;  // "t13d1516h2"

// md5 / sha256: fetched once for the process (EVP_md5() would re-fetch the implementation on every
// digest in OpenSSL 3, which costs more than the digest); never freed, on purpose.
const EVP_MD* md5() {
  static EVP_MD* const md = EVP_MD_fetch(nullptr, "MD5", nullptr);
  return md;
}
const EVP_MD* sha256() {
  static EVP_MD* const md = EVP_MD_fetch(nullptr, "SHA256", nullptr);
  return md;
}

// digest_context: this thread's context for one algorithm (slot 0 MD5, 1 SHA-256), made once and
// re-initialized for each digest: EVP_Digest allocates and frees a context per call. One per
// algorithm, so that a re-initialization keeps the same digest.
EVP_MD_CTX* digest_context(std::size_t slot) {
  using owned = std::unique_ptr<EVP_MD_CTX, decltype(&EVP_MD_CTX_free)>;
  thread_local const std::array<owned, 2> contexts = {owned(EVP_MD_CTX_new(), &EVP_MD_CTX_free),
                                                      owned(EVP_MD_CTX_new(), &EVP_MD_CTX_free)};
  return contexts.at(slot).get();
}

// text_writer: fills `s` in place: resized once to the most the caller can write, cut to what
// was written when the writer goes. A put past that size is dropped (the callers size for their
// lists, so it does not happen; a wrong size shows as a short string in the tests, not as an
// overflow). The list writers below fill room() with a local count and then advance(): a char
// store may alias any object, so a count kept in a member would be reloaded after every store.
class text_writer {
 public:
  text_writer(std::string& s, std::size_t most) : s_(s) {
    s_.resize(most);
    out_ = std::span<char>(s_);
  }
  text_writer(const text_writer&) = delete;
  text_writer& operator=(const text_writer&) = delete;
  ~text_writer() { s_.resize(n_); }

  void put(char c) {
    if (n_ < out_.size()) {
      out_[n_++] = c;
    }
  }
  void put(std::string_view text) {
    for (const char c : text) {
      put(c);
    }
  }
  [[nodiscard]] std::span<char> room() const { return out_.subspan(n_); }
  void advance(std::size_t n) { n_ += std::min(n, out_.size() - n_); }
  [[nodiscard]] std::size_t size() const { return n_; }

 private:
  std::string& s_;
  std::span<char> out_;
  std::size_t n_ = 0;
};

// digest_memo: this thread's last few digests of one algorithm, each kept with the text it was
// taken over. A node's clients are a few kinds of software, and each kind sends the same lists on
// every connection: the texts behind JA4's two hashes repeat (and JA3's, for a client that keeps
// its extension order), and a repeat, compared byte for byte, reuses its digest. The digests are
// about half of a hello's fingerprinting time (bench/tls_bench.cpp). A text longer than
// kMemoText is digested every time.
constexpr std::size_t kMemoText = 768;
constexpr std::size_t kMemoEntries = 6;
struct digest_memo {
  struct entry {
    std::size_t len = 0;
    unsigned int md_len = 0;  // 0: the entry holds nothing yet
    std::array<unsigned char, EVP_MAX_MD_SIZE> md{};
    std::array<char, kMemoText> text{};
  };
  std::array<entry, kMemoEntries> entries{};
  std::size_t next = 0;  // the entry a new text replaces (round robin)

  const entry* find(std::string_view t) const {
    for (const entry& e : entries) {
      if (e.md_len != 0 && e.len == t.size() && std::string_view(e.text.data(), e.len) == t) {
        return &e;
      }
    }
    return nullptr;
  }
  void keep(std::string_view t, std::span<const unsigned char> md) {
    if (t.size() > kMemoText || md.empty() || md.size() > EVP_MAX_MD_SIZE) {
      return;
    }
    entry& e = entries.at(next);
    next = (next + 1) % kMemoEntries;
    std::copy(t.begin(), t.end(), e.text.begin());
    e.len = t.size();
    std::copy(md.begin(), md.end(), e.md.begin());
    e.md_len = static_cast<unsigned int>(md.size());
  }
};

// memo_of: this thread's memo for the algorithm of context slot `slot`.
digest_memo& memo_of(std::size_t slot) {
  thread_local std::array<digest_memo, 2> memos;
  return memos.at(slot);
}

// put_hex_digest: the first `digits` hex digits of `md`.
void put_hex_digest(text_writer& w, std::span<const unsigned char> md, std::size_t digits) {
  for (const unsigned char b : md.first(std::min<std::size_t>(md.size(), digits / 2))) {
    w.put(hex_digit(static_cast<unsigned>(b) >> 4U));
    w.put(hex_digit(b));
  }
}

// put_digest: the first `digits` hex digits of `md` (context slot `slot`) over `text`; nothing if
// libcrypto fails (it does not for MD5/SHA-256 in the default provider, but a FIPS-only
// configuration could refuse MD5).
void put_digest(text_writer& w, const EVP_MD* md, std::size_t slot, std::string_view text,
                std::size_t digits) {
  digest_memo& memo = memo_of(slot);
  if (const auto* e = memo.find(text)) {
    put_hex_digest(w, std::span(e->md).first(e->md_len), digits);
    return;
  }
  EVP_MD_CTX* ctx = digest_context(slot);
  std::array<unsigned char, EVP_MAX_MD_SIZE> out{};
  unsigned int out_len = 0;
  if (md == nullptr || ctx == nullptr || EVP_DigestInit_ex2(ctx, md, nullptr) != 1 ||
      EVP_DigestUpdate(ctx, text.data(), text.size()) != 1 ||
      EVP_DigestFinal_ex(ctx, out.data(), &out_len) != 1) {
    return;
  }
  const auto got = std::span<const unsigned char>(out).first(out_len);
  memo.keep(text, got);
  put_hex_digest(w, got, digits);
}

// u16_count: at most how many values `list` holds (its wire bytes / 2), without walking it.
std::size_t u16_count(const u16_list& list) { return list.bytes().size() / 2; }

// for_each_value: `f` on each value of a wire list or a collected one. A wire list is read with a
// reader of its own: the list's iterator calls the parser's out-of-line decoder for each value.
template <typename F>
void for_each_value(const u16_list& list, F f) {
  byte_reader r(list.bytes());
  for (std::uint16_t v = 0; r.read_u16(v);) {
    f(v);
  }
}
template <typename F>
void for_each_value(std::span<const std::uint16_t> list, F f) {
  for (const std::uint16_t v : list) {
    f(v);
  }
}

// u16_values: a list's values, GREASE removed, in a fixed array for the lists real hellos send
// (a browser's are under 20 long) and on the heap past that: a hello may list up to 32,767 cipher
// suites and 16,383 extensions within its 16-bit lengths, and the fingerprints keep them all.
class u16_values {
 public:
  void push_back(std::uint16_t v) {
    if (size_ < kInline) {
      inline_.at(size_++) = v;
    } else {
      spill(v);
    }
  }
  [[nodiscard]] std::span<std::uint16_t> values() {
    return size_ <= kInline ? std::span(inline_).first(size_) : std::span(heap_);
  }
  [[nodiscard]] std::size_t size() const { return size_; }

 private:
  static constexpr std::size_t kInline = 256;
  // spill: push_back past the fixed array, out of line so that push_back stays small.
  [[gnu::noinline]] void spill(std::uint16_t v) {
    if (heap_.empty()) {
      heap_.assign(inline_.begin(), inline_.end());
    }
    heap_.push_back(v);
    ++size_;
  }
  std::array<std::uint16_t, kInline> inline_;  // not zeroed: only [0, size_) is read
  std::vector<std::uint16_t> heap_;
  std::size_t size_ = 0;
};

// ciphers_of: the cipher suites in wire order, GREASE removed; for the SSLv2 format the specs that
// carry a TLS suite (first byte 0).
void ciphers_of(const client_hello& hello, u16_values& out) {
  if (hello.format == hello_format::sslv2) {
    for (std::uint32_t spec : hello.sslv2_cipher_specs) {
      if (spec <= 0xffffU && !is_grease(static_cast<std::uint16_t>(spec))) {
        out.push_back(static_cast<std::uint16_t>(spec));
      }
    }
    return;
  }
  for_each_value(hello.cipher_suites, [&](std::uint16_t v) {
    if (!is_grease(v)) {
      out.push_back(v);
    }
  });
}

void extensions_of(const client_hello& hello, u16_values& out) {
  for (const extension& e : hello.extensions) {
    if (!is_grease(e.type)) {
      out.push_back(e.type);
    }
  }
}

// kDigitPairs: "00" to "99", for writing decimals two digits at a time.
constexpr std::string_view kDigitPairs =
    "0001020304050607080910111213141516171819202122232425262728293031323334353637383940414243444546"
    "4748495051525354555657585960616263646566676869707172737475767778798081828384858687888990919293"
    "949596979899";

// decimal_len: how many digits `v` has.
std::size_t decimal_len(std::uint16_t v) {
  return v >= 10000 ? 5 : v >= 1000 ? 4 : v >= 100 ? 3 : v >= 10 ? 2 : 1;
}

// put_decimal_list: the values of `list` in decimal, '-' separated, GREASE removed unless `keep`.
template <typename List>
void put_decimal_list(text_writer& w, const List& list, bool keep_grease = false) {
  const std::span<char> out = w.room();
  std::size_t n = 0;
  for_each_value(list, [&](std::uint16_t v) {
    const std::size_t sep = n != 0 ? 1 : 0;
    const std::size_t len = decimal_len(v);
    if ((is_grease(v) && !keep_grease) || out.size() - n < sep + len) {
      return;
    }
    if (sep != 0) {
      out[n] = '-';
    }
    n += sep + len;
    // Two digits per step from a table: the divisions are a chain, half as long this way.
    std::size_t i = n;
    for (; v >= 10; v = static_cast<std::uint16_t>(v / 100)) {
      const std::string_view pair = kDigitPairs.substr(2 * (v % 100), 2);
      out[--i] = pair[1];
      out[--i] = pair[0];
    }
    if (i > n - len) {
      out[--i] = static_cast<char>('0' + v);
    }
  });
  w.advance(n);
}

// put_hex_list: the values of `list` in hex, ',' separated, GREASE removed; `lead` (when not 0)
// goes before the first value, so that an empty list writes nothing at all.
template <typename List>
void put_hex_list(text_writer& w, const List& list, char lead = 0) {
  const std::span<char> out = w.room();
  std::size_t n = 0;
  for_each_value(list, [&](std::uint16_t v) {
    const char sep = n != 0 ? ',' : lead;
    const std::size_t sep_len = sep != 0 ? 1 : 0;
    if (is_grease(v) || out.size() - n < sep_len + 4) {
      return;
    }
    if (sep != 0) {
      out[n] = sep;
    }
    n += sep_len;
    const unsigned u = v;
    out[n] = hex_digit(u >> 12U);
    out[n + 1] = hex_digit(u >> 8U);
    out[n + 2] = hex_digit(u >> 4U);
    out[n + 3] = hex_digit(u);
    n += 4;
  });
  w.advance(n);
}

// ja4_version: from the highest non-GREASE supported_versions entry, else legacy_version.
std::string_view ja4_version(const client_hello& hello) {
  std::uint16_t version = hello.legacy_version;
  if (hello.format == hello_format::tls && hello.supported_versions_present) {
    std::uint16_t best = 0;
    for (std::uint16_t v : hello.supported_versions) {
      if (!is_grease(v)) {
        best = std::max(best, v);
      }
    }
    if (best != 0) {
      version = best;
    }
  }
  switch (version) {
    case 0x0304:
      return "13";
    case 0x0303:
      return "12";
    case 0x0302:
      return "11";
    case 0x0301:
      return "10";
    case 0x0300:
      return "s3";
    case 0x0002:
      return "s2";
    case 0xfeff:
      return "d1";
    case 0xfefd:
      return "d2";
    case 0xfefc:
      return "d3";
    default:
      return "00";
  }
}

bool is_alnum(std::uint8_t c) {
  return (c >= '0' && c <= '9') || (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z');
}

// put_ja4_alpn: first and last character of the first ALPN value, "00" without one; when either
// is not alphanumeric, the first and last characters of the value's hex form.
void put_ja4_alpn(text_writer& w, const client_hello& hello) {
  auto it = hello.alpn.begin();
  if (!hello.alpn_present || it == hello.alpn.end() || it->empty()) {
    w.put("00");
    return;
  }
  byte_reader r(*it);
  std::uint8_t first = 0;
  std::uint8_t last = 0;
  if (!r.peek_u8(first) || !r.skip(it->size() - 1) || !r.read_u8(last)) {
    w.put("00");  // unreachable: the value is not empty
    return;
  }
  if (is_alnum(first) && is_alnum(last)) {
    w.put(static_cast<char>(first));
    w.put(static_cast<char>(last));
    return;
  }
  w.put(hex_digit(static_cast<unsigned>(first) >> 4U));
  w.put(hex_digit(last));
}

void put_two_digits(text_writer& w, std::size_t n) {
  n = std::min<std::size_t>(n, 99);
  w.put(static_cast<char>('0' + n / 10));
  w.put(static_cast<char>('0' + n % 10));
}

// put_ja4_a: JA4's first part, "t13d1516h2" (kJa4ASize characters).
void put_ja4_a(text_writer& w, const client_hello& hello, ja4_transport transport,
               std::size_t ciphers, std::size_t extensions) {
  w.put(transport == ja4_transport::quic ? 'q' : transport == ja4_transport::dtls ? 'd' : 't');
  w.put(ja4_version(hello));
  w.put(hello.sni_present ? 'd' : 'i');
  put_two_digits(w, ciphers);
  put_two_digits(w, extensions);
  put_ja4_alpn(w, hello);
}

// ja4_lists: where a raw JA4 string ("a_b_c") holds its cipher part b and extension part c.
struct ja4_lists {
  std::size_t b_at = 0;
  std::size_t b_len = 0;
  std::size_t c_at = 0;
};

// put_ja4_raw: `out` = a + '_' + ciphers + '_' + extensions [+ '_' + signature algorithms]; the
// signature algorithms only with some extension, as in JA4's reference implementation.
ja4_lists put_ja4_raw(std::string& out, std::string_view a, std::span<const std::uint16_t> ciphers,
                      std::span<const std::uint16_t> exts, const u16_list& sigalgs) {
  ja4_lists at;
  text_writer w(out, a.size() + 3 + 5 * (ciphers.size() + exts.size() + u16_count(sigalgs)));
  w.put(a);
  w.put('_');
  at.b_at = w.size();
  put_hex_list(w, ciphers);
  at.b_len = w.size() - at.b_at;
  w.put('_');
  at.c_at = w.size();
  if (!exts.empty()) {
    put_hex_list(w, exts);
    put_hex_list(w, sigalgs, '_');
  }
  return at;
}

// put_ja4_hash: the first 12 hex digits of the SHA-256 of `text`, twelve zeros for an empty text.
void put_ja4_hash(text_writer& w, std::string_view text) {
  if (text.empty()) {
    w.put(kZeroHash);
    return;
  }
  put_digest(w, sha256(), 1, text, kJa4HashLen);
}

// put_ja4_hashed: `out` = a + '_' + hash(b) + '_' + hash(c), b and c read from `raw`.
void put_ja4_hashed(std::string& out, std::string_view raw, const ja4_lists& at) {
  text_writer w(out, kJa4Size);
  w.put(raw.substr(0, kJa4ASize));
  w.put('_');
  put_ja4_hash(w, raw.substr(at.b_at, at.b_len));
  w.put('_');
  put_ja4_hash(w, raw.substr(at.c_at));
}

// value_key: the values a fingerprint is a function of, in the order it reads them, each list
// preceded by its length so that two keys are equal only when every list is. Up to kValues
// values (a browser's inputs are about 100); a longer key is not kept (full()).
class value_key {
 public:
  static constexpr std::size_t kValues = 256;

  void push(std::uint16_t v) {
    if (n_ < kValues) {
      values_.at(n_) = v;
    }
    ++n_;
  }
  void push_list(std::span<const std::uint16_t> list) {
    push(static_cast<std::uint16_t>(std::min<std::size_t>(list.size(), 0xffff)));
    for (const std::uint16_t v : list) {
      push(v);
    }
  }
  // push_wire_list: a wire list's values, GREASE removed, as the fingerprints read it.
  void push_wire_list(const u16_list& list) {
    const std::size_t at = n_;
    push(0);
    std::uint16_t count = 0;
    for_each_value(list, [&](std::uint16_t v) {
      if (!is_grease(v)) {
        push(v);
        ++count;
      }
    });
    if (at < kValues) {
      values_.at(at) = count;
    }
  }
  [[nodiscard]] bool full() const { return n_ > kValues; }
  [[nodiscard]] std::span<const std::uint16_t> values() const {
    return std::span(values_).first(std::min(n_, kValues));
  }

 private:
  std::array<std::uint16_t, kValues> values_;  // not zeroed: only [0, n_) is read
  std::size_t n_ = 0;
};

// result_memo: this thread's last few results of one fingerprint, each kept with its value_key.
// The key holds every input of the fingerprint, so an equal key means an equal result. The same
// client software sends the same lists on every connection (Chrome shuffles its extensions, so
// its JA3 key changes and its JA4 key, over sorted lists, does not).
template <std::size_t Size>
struct result_memo {
  static constexpr std::size_t kEntries = 6;
  struct entry {
    std::size_t key_len = 0;
    std::size_t out_len = 0;  // 0: the entry holds nothing yet
    std::array<std::uint16_t, value_key::kValues> key{};
    std::array<char, Size> out{};
  };
  std::array<entry, kEntries> entries{};
  std::size_t next = 0;  // the entry a new result replaces (round robin)

  // find: copies the result kept for `k` into `out`; its length, 0 when there is none.
  std::size_t find(const value_key& k, std::array<char, Size>& out) const {
    const std::span<const std::uint16_t> v = k.values();
    for (const entry& e : entries) {
      if (e.out_len != 0 && e.key_len == v.size() &&
          std::equal(v.begin(), v.end(), e.key.begin())) {
        out = e.out;
        return e.out_len;
      }
    }
    return 0;
  }
  // get: the result kept for `k` in `out`, else the one `compute()` gives (then kept); its
  // length.
  template <typename Compute>
  std::size_t get(const value_key& k, std::array<char, Size>& out, Compute compute) {
    if (const std::size_t n = find(k, out); n != 0) {
      return n;
    }
    const std::string result = compute();
    const std::size_t n = std::min(result.size(), Size);
    std::copy_n(result.begin(), n, out.begin());
    keep(k, result);
    return n;
  }
  void keep(const value_key& k, std::string_view result) {
    if (k.full() || result.empty() || result.size() > Size) {
      return;
    }
    entry& e = entries.at(next);
    next = (next + 1) % kEntries;
    const std::span<const std::uint16_t> v = k.values();
    std::copy(v.begin(), v.end(), e.key.begin());
    e.key_len = v.size();
    std::copy(result.begin(), result.end(), e.out.begin());
    e.out_len = result.size();
  }
};

// ja4_sorted: JA4's sorted lists from the wire-order ones, in place: the ciphers sorted, the
// extensions without SNI and ALPN (they say where the client goes rather than what it is) and
// sorted. Returns the extensions' part of `exts`.
std::span<std::uint16_t> ja4_sorted(std::span<std::uint16_t> ciphers,
                                    std::span<std::uint16_t> exts) {
  // (Iterator algorithms, not std::ranges on a span: clang with libstdc++ 12, the fuzz build's
  // compiler, rejects ranges::remove_if on a std::span.)
  std::sort(ciphers.begin(), ciphers.end());
  const auto kept = std::remove_if(exts.begin(), exts.end(), [](std::uint16_t e) {
    return e == kExtServerName || e == kExtAlpn;
  });
  exts = exts.first(static_cast<std::size_t>(kept - exts.begin()));
  std::sort(exts.begin(), exts.end());
  return exts;
}

}  // namespace

ja3_fingerprint ja3(const client_hello& hello) {
  u16_values ciphers;
  u16_values exts;
  ciphers_of(hello, ciphers);
  extensions_of(hello, exts);
  ja3_fingerprint out;
  {
    // Five digits and a '-' per value; a point format is one byte, three digits.
    text_writer w(out.full,
                  5 + 4 + 6 * (ciphers.size() + exts.size() + u16_count(hello.supported_groups)) +
                      4 * hello.ec_point_formats.size());
    // The version as sent, even a GREASE value.
    put_decimal_list(w, std::span<const std::uint16_t>(&hello.legacy_version, 1), true);
    w.put(',');
    put_decimal_list(w, ciphers.values());
    w.put(',');
    put_decimal_list(w, exts.values());
    w.put(',');
    put_decimal_list(w, hello.supported_groups);
    w.put(',');
    u16_values formats;
    byte_reader r(hello.ec_point_formats);
    for (std::uint8_t f = 0; r.read_u8(f);) {
      formats.push_back(f);  // one byte each: never GREASE
    }
    put_decimal_list(w, formats.values());
  }
  text_writer w(out.md5, kJa3Size);
  put_digest(w, md5(), 0, out.full, kJa3Size);
  return out;
}

ja4_fingerprint ja4(const client_hello& hello, ja4_transport transport) {
  u16_values ciphers;
  u16_values exts;
  ciphers_of(hello, ciphers);
  extensions_of(hello, exts);
  std::string a;  // kJa4ASize characters: no allocation
  {
    text_writer w(a, kJa4ASize);
    put_ja4_a(w, hello, transport, ciphers.size(), exts.size());
  }
  ja4_fingerprint out;
  const ja4_lists ro =
      put_ja4_raw(out.ja4_ro, a, ciphers.values(), exts.values(), hello.signature_algorithms);
  // The original-order variants keep SNI and ALPN; the sorted ones leave them out.
  const std::span<std::uint16_t> sorted_ciphers = ciphers.values();
  const std::span<std::uint16_t> sorted_exts = ja4_sorted(sorted_ciphers, exts.values());
  const ja4_lists r =
      put_ja4_raw(out.ja4_r, a, sorted_ciphers, sorted_exts, hello.signature_algorithms);
  put_ja4_hashed(out.ja4, out.ja4_r, r);
  put_ja4_hashed(out.ja4_o, out.ja4_ro, ro);
  return out;
}

namespace {

// ja3_key: JA3's inputs: the format, the version as sent, then its four lists in wire order.
void ja3_key(const client_hello& hello, std::span<const std::uint16_t> ciphers,
             std::span<const std::uint16_t> exts, value_key& k) {
  k.push(static_cast<std::uint16_t>(hello.format));
  k.push(hello.legacy_version);
  k.push_list(ciphers);
  k.push_list(exts);
  k.push_wire_list(hello.supported_groups);
  k.push(static_cast<std::uint16_t>(hello.ec_point_formats.size()));
  byte_reader formats(hello.ec_point_formats);
  for (std::uint8_t f = 0; formats.read_u8(f);) {
    k.push(f);
  }
}

// ja4_key: JA4's inputs: its first part (version, SNI or not, counts, ALPN), the sorted lists
// (sorted here, in place) and the signature algorithms in wire order.
void ja4_key(const client_hello& hello, u16_values& ciphers, u16_values& exts, value_key& k) {
  std::string a;  // kJa4ASize characters: no allocation
  {
    text_writer w(a, kJa4ASize);
    put_ja4_a(w, hello, ja4_transport::tcp, ciphers.size(), exts.size());
  }
  for (const char c : a) {
    k.push(static_cast<std::uint8_t>(c));
  }
  const std::span<std::uint16_t> sorted_ciphers = ciphers.values();
  const std::span<std::uint16_t> sorted_exts = ja4_sorted(sorted_ciphers, exts.values());
  k.push_list(sorted_ciphers);
  k.push_list(sorted_exts);
  k.push_wire_list(hello.signature_algorithms);
}

}  // namespace

hello_fingerprints fingerprints(const client_hello& hello) {
  thread_local result_memo<kJa3Size> ja3_memo;
  thread_local result_memo<kJa4Size> ja4_memo;
  u16_values ciphers;
  u16_values exts;
  ciphers_of(hello, ciphers);
  extensions_of(hello, exts);
  hello_fingerprints out;
  value_key k3;
  ja3_key(hello, ciphers.values(), exts.values(), k3);  // before ja4_key sorts the lists
  out.ja3_len = ja3_memo.get(k3, out.ja3_md5, [&] { return ja3(hello).md5; });
  value_key k4;
  ja4_key(hello, ciphers, exts, k4);
  out.ja4_len = ja4_memo.get(k4, out.ja4, [&] { return ja4(hello).ja4; });
  return out;
}

}  // namespace linesman::tls
