#include "capture/pcapng_writer.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <fstream>
#include <iostream>
#include <map>
#include <mutex>
#include <random>
#include <set>

namespace linesman::capture {

namespace detail {

// dir_state: a capture directory's bookkeeping, shared by the capture_dir and its recorders so
// that either may go first. Files are keyed by a serial in creation order: the first closed
// entry is the oldest one that may be removed.
struct dir_state {
  struct entry {
    std::filesystem::path path;
    std::uint64_t bytes = 0;
    bool open = false;
  };

  std::mutex mu;
  // files: the captures linesman wrote (this run, or an earlier one per the manifest); the only
  // files ever removed.
  std::map<std::uint64_t, entry> files;
  std::uint64_t next_serial = 0;
  std::uint64_t total = 0;  // own files plus foreign_bytes
  std::uint64_t max_total = 0;
  // foreign_bytes: *.pcapng files in the directory that linesman did not write (a tcpdump
  // capture, a file named like ours but not in the manifest). They count against the budget and
  // are never removed; foreign_example names one for the warning.
  std::uint64_t foreign_bytes = 0;
  std::string foreign_example;
  bool foreign_warned = false;
  std::filesystem::path dir;
  bool stopped = false;
  std::string message;
  std::function<void(const std::string&)> on_stop;
  std::function<void(const std::string&)> on_warning;

  // evict_until: remove the oldest closed files linesman wrote until total + reserve <=
  // max_total. Returns whether that was reached. When foreign files keep the budget out of
  // reach, warns once (through on_warning, called with `mu` held). Caller holds `mu`.
  bool evict_until(std::uint64_t reserve) {
    auto it = files.begin();
    while (total + reserve > max_total && it != files.end()) {
      if (it->second.open) {
        ++it;
        continue;
      }
      std::error_code ignored;
      std::filesystem::remove(it->second.path, ignored);
      total -= std::min(total, it->second.bytes);
      it = files.erase(it);
    }
    const bool ok = total + reserve <= max_total;
    if (!ok && foreign_bytes != 0 && !foreign_warned) {
      foreign_warned = true;
      warn("capture directory " + dir.string() + ": " + std::to_string(foreign_bytes) +
           " bytes of files linesman did not write (such as " + foreign_example +
           ") take up the capture budget of " + std::to_string(max_total) +
           " bytes; linesman never removes them: move them away or raise max_total_bytes");
    }
    return ok;
  }

  void warn(const std::string& why) const {
    if (on_warning) {
      on_warning(why);
    } else {
      std::cerr << "linesman: " << why << "\n";
    }
  }

  // stop: capture stops for good; the message goes out once.
  void stop(std::string why) {
    std::function<void(const std::string&)> cb;
    {
      std::lock_guard lock(mu);
      if (stopped) {
        return;
      }
      stopped = true;
      message = why;
      cb = on_stop;
    }
    if (cb) {
      cb(why);
    } else {
      std::cerr << "linesman: " << why << "\n";
    }
  }
};

}  // namespace detail

namespace {

// Block types and constants (pcapng draft, sections 4.1-4.3).
constexpr std::uint32_t kShbType = 0x0A0D0D0A;
constexpr std::uint32_t kIdbType = 0x00000001;
constexpr std::uint32_t kEpbType = 0x00000006;
constexpr std::uint32_t kByteOrderMagic = 0x1A2B3C4D;
constexpr std::uint16_t kLinktypeEthernet = 1;
constexpr std::uint16_t kOptEndOfOpt = 0;
constexpr std::uint16_t kShbUserAppl = 4;

constexpr std::uint8_t kTcpFin = 0x01;
constexpr std::uint8_t kTcpSyn = 0x02;
constexpr std::uint8_t kTcpRst = 0x04;
constexpr std::uint8_t kTcpPsh = 0x08;
constexpr std::uint8_t kTcpAck = 0x10;

constexpr std::size_t kEthLen = 14;
constexpr std::size_t kIpv4Len = 20;
constexpr std::size_t kIpv6Len = 40;
constexpr std::size_t kTcpLen = 20;
constexpr std::size_t kSynOptionsLen = 8;  // MSS (4) + NOP (1) + window scale (3)
constexpr std::uint8_t kWindowShift = 7;   // so an unscaled 0xffff window reads as 8 MiB

int side_index(direction d) { return d == direction::client_to_server ? 0 : 1; }
direction other(direction d) {
  return d == direction::client_to_server ? direction::server_to_client
                                          : direction::client_to_server;
}

// Host-order appends for pcapng block fields (the SHB magic tells readers our order).
void put_h16(std::vector<std::uint8_t>& b, std::uint16_t v) {
  const auto* p = reinterpret_cast<const std::uint8_t*>(&v);
  b.insert(b.end(), p, p + sizeof v);
}
void put_h32(std::vector<std::uint8_t>& b, std::uint32_t v) {
  const auto* p = reinterpret_cast<const std::uint8_t*>(&v);
  b.insert(b.end(), p, p + sizeof v);
}
void put_h64(std::vector<std::uint8_t>& b, std::uint64_t v) {
  const auto* p = reinterpret_cast<const std::uint8_t*>(&v);
  b.insert(b.end(), p, p + sizeof v);
}
// Network-order appends for the synthesized packet headers.
void put_n16(std::vector<std::uint8_t>& b, std::uint16_t v) {
  b.push_back(static_cast<std::uint8_t>(v >> 8));
  b.push_back(static_cast<std::uint8_t>(v & 0xff));
}
void put_n32(std::vector<std::uint8_t>& b, std::uint32_t v) {
  put_n16(b, static_cast<std::uint16_t>(v >> 16));
  put_n16(b, static_cast<std::uint16_t>(v & 0xffff));
}
void set_n16(std::vector<std::uint8_t>& b, std::size_t at, std::uint16_t v) {
  b[at] = static_cast<std::uint8_t>(v >> 8);
  b[at + 1] = static_cast<std::uint8_t>(v & 0xff);
}
void pad4(std::vector<std::uint8_t>& b) {
  while (b.size() % 4 != 0) {
    b.push_back(0);
  }
}
void set_h32(std::vector<std::uint8_t>& b, std::size_t at, std::uint32_t v) {
  const auto* p = reinterpret_cast<const std::uint8_t*>(&v);
  std::copy(p, p + sizeof v, b.begin() + static_cast<std::ptrdiff_t>(at));
}

// sum16: the RFC 1071 one's-complement sum of `bytes` (odd length padded with zero), unfolded.
std::uint32_t sum16(std::span<const std::uint8_t> bytes, std::uint32_t acc) {
  std::size_t i = 0;
  for (; i + 1 < bytes.size(); i += 2) {
    acc += static_cast<std::uint32_t>(bytes[i] << 8 | bytes[i + 1]);
  }
  if (i < bytes.size()) {
    acc += static_cast<std::uint32_t>(bytes[i] << 8);
  }
  return acc;
}
std::uint16_t fold(std::uint32_t acc) {
  while (acc >> 16 != 0) {
    acc = (acc & 0xffff) + (acc >> 16);
  }
  return static_cast<std::uint16_t>(~acc & 0xffff);
}

std::uint64_t micros(clock::time_point ts) {
  auto us = std::chrono::duration_cast<std::chrono::microseconds>(ts.time_since_epoch()).count();
  return us < 0 ? 0 : static_cast<std::uint64_t>(us);
}

// address_bytes: the 4 (IPv4, including v4-mapped IPv6) or 16 bytes of `a`.
std::array<std::uint8_t, 16> address_bytes(const asio::ip::address& a, bool as_v6) {
  std::array<std::uint8_t, 16> out{};
  if (!as_v6) {
    auto v4 = a.is_v4() ? a.to_v4() : asio::ip::make_address_v4(asio::ip::v4_mapped, a.to_v6());
    auto b = v4.to_bytes();
    std::copy(b.begin(), b.end(), out.begin());
  } else {
    auto b = a.is_v6() ? a.to_v6().to_bytes()
                       : asio::ip::make_address_v6(asio::ip::v4_mapped, a.to_v4()).to_bytes();
    std::copy(b.begin(), b.end(), out.begin());
  }
  return out;
}

bool is_v4ish(const asio::ip::address& a) { return a.is_v4() || a.to_v6().is_v4_mapped(); }

}  // namespace

std::string safe_file_stem(std::string_view id) {
  std::string out;
  out.reserve(id.size());
  for (char c : id) {
    bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '.' || c == '_' || c == '-';
    out.push_back(ok ? c : '_');
  }
  if (out.empty()) {
    out = "_";
  }
  if (out.front() == '.') {
    out.front() = '_';
  }
  return out;
}

std::unique_ptr<recorder> recorder::open(const std::filesystem::path& path,
                                         const asio::ip::tcp::endpoint& client,
                                         const asio::ip::tcp::endpoint& server,
                                         std::uint64_t bytes_per_direction, std::error_code& ec,
                                         clock::time_point syn_time) {
  ec.clear();
  std::unique_ptr<recorder> r(new recorder());
  r->path_ = path;
  r->limit_ = bytes_per_direction;
  r->v6_ = !(is_v4ish(client.address()) && is_v4ish(server.address()));
  r->addr_[0] = address_bytes(client.address(), r->v6_);
  r->addr_[1] = address_bytes(server.address(), r->v6_);
  r->port_[0] = client.port();
  r->port_[1] = server.port();
  // Locally administered unicast MACs: obviously synthetic, stable per side.
  r->sides_[0].mac = {0x02, 0x00, 0x00, 0x00, 0x00, 0x01};
  r->sides_[1].mac = {0x02, 0x00, 0x00, 0x00, 0x00, 0x02};
  // Random ISNs like a real stack, so two captures never look like one stream when merged.
  std::random_device rd;
  r->sides_[0].isn = rd();
  r->sides_[1].isn = rd();
  r->buf_.reserve(kMaxSegmentPayload + 128);

  // O_EXCL: never follow or reuse a file someone placed there; 0600: may hold credentials.
  r->fd_ = ::open(path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
  if (r->fd_ < 0) {
    ec = std::error_code(errno, std::generic_category());
    return nullptr;
  }
  r->write_headers(syn_time);
  if (r->failed()) {
    ec = r->error_;
    r->close();
    std::error_code ignored;
    std::filesystem::remove(path, ignored);
    return nullptr;
  }
  return r;
}

recorder::~recorder() { close(); }

void recorder::close() {
  if (fd_ >= 0) {
    ::close(fd_);
    fd_ = -1;
    if (dir_) {
      std::lock_guard lock(dir_->mu);
      if (auto it = dir_->files.find(dir_serial_); it != dir_->files.end()) {
        it->second.open = false;
      }
    }
  }
}

bool recorder::wants_more(direction d) const {
  const side_state& s = side(d);
  return fd_ >= 0 && !failed() && !dir_stopped_ && !s.closed && s.captured < limit_;
}

std::uint32_t recorder::next_seq(direction d) const {
  const side_state& s = side(d);
  // Sequence space: ISN, +1 for the SYN, +payload, +1 once a FIN was sent (RFC 9293 3.4).
  return static_cast<std::uint32_t>(s.isn + 1 + s.seen + (s.fin_sent ? 1 : 0));
}

void recorder::write_headers(clock::time_point syn_time) {
  buf_.clear();
  // Section Header Block: type, length, byte-order magic, version 1.0, section length unknown.
  std::string_view appl = "linesman 0.1.0 (synthesized TCP)";
  std::size_t opt_len = 4 + ((appl.size() + 3) / 4) * 4 + 4;
  auto shb_len = static_cast<std::uint32_t>(28 + opt_len);
  put_h32(buf_, kShbType);
  put_h32(buf_, shb_len);
  put_h32(buf_, kByteOrderMagic);
  put_h16(buf_, 1);
  put_h16(buf_, 0);
  put_h64(buf_, ~std::uint64_t{0});
  put_h16(buf_, kShbUserAppl);
  put_h16(buf_, static_cast<std::uint16_t>(appl.size()));
  buf_.insert(buf_.end(), appl.begin(), appl.end());
  pad4(buf_);
  put_h16(buf_, kOptEndOfOpt);
  put_h16(buf_, 0);
  put_h32(buf_, shb_len);
  // Interface Description Block: Ethernet, no snap limit; default resolution is microseconds.
  put_h32(buf_, kIdbType);
  put_h32(buf_, 20);
  put_h16(buf_, kLinktypeEthernet);
  put_h16(buf_, 0);
  put_h32(buf_, 0);
  put_h32(buf_, 20);
  write_all(buf_);

  // The three-way handshake, so dissectors see the connection's start and the ISNs.
  const direction c2s = direction::client_to_server;
  const direction s2c = direction::server_to_client;
  packet(c2s, kTcpSyn, sides_[0].isn, 0, {}, syn_time, true);
  packet(s2c, kTcpSyn | kTcpAck, sides_[1].isn, next_seq(c2s), {}, syn_time, true);
  packet(c2s, kTcpAck, next_seq(c2s), next_seq(s2c), {}, syn_time, false);
}

void recorder::packet(direction d, std::uint8_t flags, std::uint32_t seq, std::uint32_t ack,
                      std::span<const std::uint8_t> payload, clock::time_point ts,
                      bool syn_options) {
  const int from = side_index(d);
  const int to = 1 - from;
  const std::size_t tcp_len = kTcpLen + (syn_options ? kSynOptionsLen : 0);
  const std::size_t ip_len = v6_ ? kIpv6Len : kIpv4Len;
  const std::size_t frame_len = kEthLen + ip_len + tcp_len + payload.size();

  buf_.clear();
  // Enhanced Packet Block header; total length patched below.
  put_h32(buf_, kEpbType);
  put_h32(buf_, 0);
  put_h32(buf_, 0);  // interface 0
  std::uint64_t us = micros(ts);
  put_h32(buf_, static_cast<std::uint32_t>(us >> 32));
  put_h32(buf_, static_cast<std::uint32_t>(us & 0xffffffff));
  put_h32(buf_, static_cast<std::uint32_t>(frame_len));
  put_h32(buf_, static_cast<std::uint32_t>(frame_len));

  // Ethernet II.
  const std::size_t eth_at = buf_.size();
  buf_.insert(buf_.end(), sides_[to].mac.begin(), sides_[to].mac.end());
  buf_.insert(buf_.end(), sides_[from].mac.begin(), sides_[from].mac.end());
  put_n16(buf_, v6_ ? 0x86DD : 0x0800);

  // IP.
  const std::size_t ip_at = buf_.size();
  const std::size_t addr_len = v6_ ? 16 : 4;
  if (v6_) {
    put_n32(buf_, 0x60000000);
    put_n16(buf_, static_cast<std::uint16_t>(tcp_len + payload.size()));
    buf_.push_back(6);   // next header: TCP
    buf_.push_back(64);  // hop limit
  } else {
    buf_.push_back(0x45);
    buf_.push_back(0);
    put_n16(buf_, static_cast<std::uint16_t>(kIpv4Len + tcp_len + payload.size()));
    put_n16(buf_, sides_[from].ip_id++);
    put_n16(buf_, 0x4000);  // don't fragment
    buf_.push_back(64);
    buf_.push_back(6);
    put_n16(buf_, 0);  // checksum, patched below
  }
  buf_.insert(buf_.end(), addr_[from].begin(), addr_[from].begin() + static_cast<long>(addr_len));
  buf_.insert(buf_.end(), addr_[to].begin(), addr_[to].begin() + static_cast<long>(addr_len));
  if (!v6_) {
    std::span<const std::uint8_t> hdr(buf_.data() + ip_at, kIpv4Len);
    set_n16(buf_, ip_at + 10, fold(sum16(hdr, 0)));
  }

  // TCP.
  const std::size_t tcp_at = buf_.size();
  put_n16(buf_, port_[from]);
  put_n16(buf_, port_[to]);
  put_n32(buf_, seq);
  put_n32(buf_, ack);
  buf_.push_back(static_cast<std::uint8_t>((tcp_len / 4) << 4));
  buf_.push_back(flags);
  put_n16(buf_, 0xffff);  // window (scaled by kWindowShift after the handshake)
  put_n16(buf_, 0);       // checksum, patched below
  put_n16(buf_, 0);       // urgent pointer
  if (syn_options) {
    buf_.insert(buf_.end(), {2, 4, 0, 0});
    set_n16(buf_, buf_.size() - 2, static_cast<std::uint16_t>(kMaxSegmentPayload));
    buf_.insert(buf_.end(), {1, 3, 3, kWindowShift});
  }
  buf_.insert(buf_.end(), payload.begin(), payload.end());

  // TCP checksum over the pseudo-header (RFC 9293 3.1, RFC 8200 8.1), header and payload.
  std::uint32_t acc = 0;
  std::span<const std::uint8_t> src(buf_.data() + ip_at + (v6_ ? 8 : 12), addr_len);
  std::span<const std::uint8_t> dst(buf_.data() + ip_at + (v6_ ? 24 : 16), addr_len);
  acc = sum16(src, acc);
  acc = sum16(dst, acc);
  const std::size_t seg_len = tcp_len + payload.size();
  acc += 6;
  acc += static_cast<std::uint32_t>(seg_len & 0xffff);
  acc += static_cast<std::uint32_t>(seg_len >> 16);
  acc = sum16(std::span<const std::uint8_t>(buf_.data() + tcp_at, seg_len), acc);
  std::uint16_t csum = fold(acc);
  set_n16(buf_, tcp_at + 16, csum);
  (void)eth_at;

  pad4(buf_);
  put_h32(buf_, 0);  // trailing total length, patched below
  auto total = static_cast<std::uint32_t>(buf_.size());
  set_h32(buf_, 4, total);
  set_h32(buf_, buf_.size() - 4, total);
  write_all(buf_);
}

void recorder::write_all(std::span<const std::uint8_t> bytes) {
  if (fd_ < 0 || failed()) {
    return;
  }
  std::size_t done = 0;
  while (done < bytes.size()) {
    ssize_t n = ::write(fd_, bytes.data() + done, bytes.size() - done);
    if (n < 0) {
      if (errno == EINTR) {
        continue;
      }
      fail(std::error_code(errno, std::generic_category()));
      return;
    }
    done += static_cast<std::size_t>(n);
  }
  file_bytes_ += bytes.size();
  if (dir_) {
    bool over = false;
    {
      std::lock_guard lock(dir_->mu);
      dir_->total += bytes.size();
      if (auto it = dir_->files.find(dir_serial_); it != dir_->files.end()) {
        it->second.bytes += bytes.size();
      }
      over = !dir_->evict_until(0);
    }
    // Over budget with only open files left: this file stops growing; capture goes on.
    if (over) {
      dir_stopped_ = true;
    }
  }
}

void recorder::fail(std::error_code ec) {
  error_ = ec;
  if (dir_) {
    dir_->stop("capture stopped: writing " + path_.string() + " failed: " + ec.message() +
               " (forwarding continues without capture)");
  }
}

void recorder::data(direction d, std::span<const std::uint8_t> bytes, clock::time_point ts) {
  side_state& s = side(d);
  if (s.closed || bytes.empty()) {
    return;
  }
  std::uint64_t room = wants_more(d) ? limit_ - s.captured : 0;
  std::size_t keep = static_cast<std::size_t>(std::min<std::uint64_t>(room, bytes.size()));
  std::size_t at = 0;
  while (at < keep && !failed() && !dir_stopped_) {
    std::size_t n = std::min(kMaxSegmentPayload, keep - at);
    std::uint8_t flags = kTcpAck;
    if (at + n == keep) {
      flags |= kTcpPsh;  // last segment of this read, like a sender's push
    }
    packet(d, flags, next_seq(d), next_seq(other(d)), bytes.subspan(at, n), ts, false);
    if (failed()) {
      break;
    }
    s.seen += n;
    s.captured += n;
    at += n;
  }
  s.seen += bytes.size() - at;
}

void recorder::skipped(direction d, std::uint64_t len) {
  side_state& s = side(d);
  if (!s.closed) {
    s.seen += len;
  }
}

void recorder::fin(direction d, clock::time_point ts) {
  side_state& s = side(d);
  if (s.closed) {
    return;
  }
  if (fd_ >= 0 && !failed() && !dir_stopped_) {
    packet(d, kTcpFin | kTcpAck, next_seq(d), next_seq(other(d)), {}, ts, false);
  }
  s.fin_sent = true;
  s.closed = true;
}

void recorder::rst(direction d, clock::time_point ts) {
  side_state& s = side(d);
  if (s.closed && side(other(d)).closed) {
    return;
  }
  if (fd_ >= 0 && !failed() && !dir_stopped_) {
    packet(d, kTcpRst | kTcpAck, next_seq(d), next_seq(other(d)), {}, ts, false);
  }
  // A reset ends the whole connection: nothing more is written in either direction.
  sides_[0].closed = true;
  sides_[1].closed = true;
}

// ---- capture_dir ----

namespace {

// kManifest: the names of the captures linesman wrote in a directory, one per line, appended as
// each file is created. Only files listed here (and named as linesman names them) are evicted:
// the extension alone says nothing about who wrote a file. kMaxManifestBytes bounds the read.
constexpr const char* kManifest = ".linesman-captures";
constexpr std::uintmax_t kMaxManifestBytes = 16 * 1024 * 1024;

// own_name: `name` has the shape capture_dir::start gives: safe_file_stem chars + ".pcapng".
bool own_name(const std::string& name) {
  constexpr std::string_view ext = ".pcapng";
  if (name.size() <= ext.size() || !name.ends_with(ext) || name.front() == '.') {
    return false;
  }
  return std::all_of(name.begin(), name.end() - static_cast<std::ptrdiff_t>(ext.size()),
                     [](char c) {
                       return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
                              (c >= '0' && c <= '9') || c == '.' || c == '_' || c == '-';
                     });
}

std::set<std::string> read_manifest(const std::filesystem::path& dir) {
  std::set<std::string> out;
  std::error_code ec;
  const auto path = dir / kManifest;
  if (!std::filesystem::is_regular_file(path, ec) ||
      std::filesystem::file_size(path, ec) > kMaxManifestBytes || ec) {
    return out;
  }
  std::ifstream in(path);
  for (std::string line; std::getline(in, line);) {
    if (own_name(line)) {
      out.insert(line);
    }
  }
  return out;
}

// write_manifest: replace the manifest with `names` (a new file renamed over the old one).
void write_manifest(const std::filesystem::path& dir, const std::vector<std::string>& names) {
  const auto tmp = dir / (std::string(kManifest) + ".tmp");
  {
    std::ofstream out(tmp, std::ios::trunc);
    for (const auto& n : names) {
      out << n << "\n";
    }
    if (!out) {
      return;
    }
  }
  std::error_code ignored;
  std::filesystem::rename(tmp, dir / kManifest, ignored);
}

// append_manifest: record `name` as linesman's. O_APPEND: one short line is one atomic write,
// so two processes sharing the directory do not interleave.
void append_manifest(const std::filesystem::path& dir, const std::string& name) {
  const int fd = ::open((dir / kManifest).c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
  if (fd < 0) {
    return;
  }
  const std::string line = name + "\n";
  (void)!::write(fd, line.data(), line.size());
  ::close(fd);
}

}  // namespace

std::unique_ptr<capture_dir> capture_dir::open(options opts, std::error_code& ec) {
  ec.clear();
  namespace fs = std::filesystem;
  if (!fs::exists(opts.dir, ec)) {
    if (ec) {
      return nullptr;
    }
    // 0700: the captures inside may hold credentials.
    if (::mkdir(opts.dir.c_str(), 0700) != 0 && errno != EEXIST) {
      ec = std::error_code(errno, std::generic_category());
      return nullptr;
    }
  }
  if (!fs::is_directory(opts.dir, ec)) {
    if (!ec) {
      ec = std::make_error_code(std::errc::not_a_directory);
    }
    return nullptr;
  }
  std::unique_ptr<capture_dir> d(new capture_dir());
  d->dir_ = opts.dir;
  d->bytes_per_direction_ = opts.bytes_per_direction;
  d->state_ = std::make_shared<detail::dir_state>();
  d->state_->max_total = opts.max_total_bytes;
  d->state_->dir = opts.dir;
  d->state_->on_stop = std::move(opts.on_stop);
  d->state_->on_warning = std::move(opts.on_warning);

  // Captures left by an earlier run (listed in the manifest) count against the budget, oldest
  // first; other *.pcapng files count too but are never removed.
  const std::set<std::string> listed = read_manifest(opts.dir);
  struct found {
    fs::file_time_type mtime;
    fs::path path;
    std::uint64_t bytes;
  };
  std::vector<found> existing;
  for (fs::directory_iterator it(opts.dir, ec), end; !ec && it != end; it.increment(ec)) {
    std::error_code e2;
    if (it->path().extension() != ".pcapng" || !it->is_regular_file(e2)) {
      continue;
    }
    const std::uint64_t bytes = it->file_size(e2);
    const std::string name = it->path().filename().string();
    if (listed.contains(name) && own_name(name)) {
      existing.push_back({it->last_write_time(e2), it->path(), bytes});
    } else {
      d->state_->foreign_bytes += bytes;
      if (d->state_->foreign_example.empty()) {
        d->state_->foreign_example = name;
      }
    }
  }
  if (ec) {
    return nullptr;
  }
  std::sort(existing.begin(), existing.end(),
            [](const found& a, const found& b) { return a.mtime < b.mtime; });
  std::vector<std::string> keep;
  for (auto& f : existing) {
    keep.push_back(f.path.filename().string());
    d->state_->files[d->state_->next_serial++] = {f.path, f.bytes, false};
    d->state_->total += f.bytes;
  }
  d->state_->total += d->state_->foreign_bytes;
  if (!listed.empty()) {
    write_manifest(opts.dir, keep);  // forget the names of files that are gone
  }
  return d;
}

capture_dir::~capture_dir() = default;

std::unique_ptr<recorder> capture_dir::start(std::string_view conn_id,
                                             const asio::ip::tcp::endpoint& client,
                                             const asio::ip::tcp::endpoint& server,
                                             std::string& out_file_name,
                                             clock::time_point syn_time) {
  out_file_name.clear();
  std::string stem = safe_file_stem(conn_id);
  {
    std::lock_guard lock(state_->mu);
    if (state_->stopped) {
      return nullptr;
    }
    // Make room for a bounded capture up front (headers add about 80 bytes per 16 KiB segment);
    // an unbounded one is checked as it grows.
    std::uint64_t reserve = 4096;
    if (bytes_per_direction_ != kUnlimited) {
      reserve += 2 * bytes_per_direction_ + 2 * bytes_per_direction_ / 64;
    }
    state_->evict_until(std::min(reserve, state_->max_total));
  }
  // Connection ids restart with the process: a name taken by an earlier run gets a suffix
  // instead of being overwritten (O_EXCL refuses it).
  std::error_code ec;
  std::unique_ptr<recorder> r;
  std::string name;
  for (int attempt = 0; attempt < 100; ++attempt) {
    name = stem + (attempt == 0 ? "" : "-" + std::to_string(attempt)) + ".pcapng";
    r = recorder::open(dir_ / name, client, server, bytes_per_direction_, ec, syn_time);
    if (r || ec != std::errc::file_exists) {
      break;
    }
  }
  if (!r) {
    state_->stop("capture stopped: cannot create " + (dir_ / name).string() + ": " + ec.message() +
                 " (forwarding continues without capture)");
    return nullptr;
  }
  {
    std::lock_guard lock(state_->mu);
    append_manifest(dir_, name);
    r->dir_serial_ = state_->next_serial++;
    state_->files[r->dir_serial_] = {r->path(), r->file_bytes(), true};
    state_->total += r->file_bytes();
  }
  r->dir_ = state_;
  out_file_name = name;
  return r;
}

bool capture_dir::stopped() const {
  std::lock_guard lock(state_->mu);
  return state_->stopped;
}

std::string capture_dir::stop_message() const {
  std::lock_guard lock(state_->mu);
  return state_->message;
}

std::uint64_t capture_dir::total_bytes() const {
  std::lock_guard lock(state_->mu);
  return state_->total;
}

}  // namespace linesman::capture
