#include "capture/pcap_reader.hpp"

#include "tls/byte_reader.hpp"

#include <arpa/inet.h>
#include <netinet/in.h>

#include <algorithm>
#include <array>
#include <fstream>
#include <map>
#include <optional>

namespace linesman::capture {

namespace {

using tls::byte_reader;

// endian_reader: tls::byte_reader (big-endian, checked) plus the byte order of the file
// section being read. Capture headers are in the writer's host order; packet headers are
// always big-endian and read through the plain byte_reader.
class endian_reader {
 public:
  endian_reader(byte_reader r, bool little) : r_(r), little_(little) {}
  [[nodiscard]] bool u16(std::uint16_t& out) {
    if (!r_.read_u16(out)) {
      return false;
    }
    if (little_) {
      out = static_cast<std::uint16_t>((out >> 8) | (out << 8));
    }
    return true;
  }
  [[nodiscard]] bool u32(std::uint32_t& out) {
    if (!r_.read_u32(out)) {
      return false;
    }
    if (little_) {
      out = swap32(out);
    }
    return true;
  }
  [[nodiscard]] bool u64(std::uint64_t& out) {
    std::uint32_t a = 0;
    std::uint32_t b = 0;
    if (!u32(a) || !u32(b)) {
      return false;
    }
    out = little_ ? (std::uint64_t{b} << 32 | a) : (std::uint64_t{a} << 32 | b);
    return true;
  }
  byte_reader& raw() { return r_; }
  [[nodiscard]] bool little() const { return little_; }

  static std::uint32_t swap32(std::uint32_t v) {
    return (v >> 24) | ((v >> 8) & 0xff00) | ((v << 8) & 0xff0000) | (v << 24);
  }

 private:
  byte_reader r_;
  bool little_;
};

// endpoint_key: an IP (16 bytes, IPv4 as v4-mapped) and a port.
struct endpoint_key {
  std::array<std::uint8_t, 16> ip{};
  std::uint16_t port = 0;
  bool v6 = false;
  auto operator<=>(const endpoint_key&) const = default;
};

// tcp_packet: a decoded TCP segment; payload borrows the capture data.
struct tcp_packet {
  endpoint_key src;
  endpoint_key dst;
  std::uint32_t seq = 0;
  std::uint8_t flags = 0;
  std::span<const std::uint8_t> payload;
  std::int64_t ts_ns = 0;
  std::size_t index = 0;  // order in the file
};

constexpr std::uint8_t kFin = 0x01;
constexpr std::uint8_t kSyn = 0x02;
constexpr std::uint8_t kRst = 0x04;
constexpr std::uint8_t kAck = 0x10;

// Link types (https://www.tcpdump.org/linktypes.html).
constexpr std::uint32_t kLinkNull = 0;
constexpr std::uint32_t kLinkEthernet = 1;
constexpr std::uint32_t kLinkRawBsd12 = 12;
constexpr std::uint32_t kLinkRawBsd14 = 14;
constexpr std::uint32_t kLinkRaw = 101;
constexpr std::uint32_t kLinkLoop = 108;
constexpr std::uint32_t kLinkSll = 113;
constexpr std::uint32_t kLinkIpv4 = 228;
constexpr std::uint32_t kLinkIpv6 = 229;
constexpr std::uint32_t kLinkSll2 = 276;

bool link_supported(std::uint32_t lt) {
  switch (lt) {
    case kLinkNull:
    case kLinkEthernet:
    case kLinkRawBsd12:
    case kLinkRawBsd14:
    case kLinkRaw:
    case kLinkLoop:
    case kLinkSll:
    case kLinkIpv4:
    case kLinkIpv6:
    case kLinkSll2:
      return true;
    default:
      return false;
  }
}

enum class l3 { none, v4, v6, peek };

l3 from_ethertype(std::uint16_t t) {
  if (t == 0x0800) {
    return l3::v4;
  }
  if (t == 0x86DD) {
    return l3::v6;
  }
  return l3::none;
}

// BSD address families as written by the null/loop headers (IPv6 differs per OS).
l3 from_af(std::uint32_t af) {
  if (af == 2) {
    return l3::v4;
  }
  if (af == 10 || af == 24 || af == 28 || af == 30) {
    return l3::v6;
  }
  return l3::none;
}

// decode_tcp: the TCP segment inside link-layer frame `frame`, if there is one. Anything else
// (ARP, UDP, IP fragments, garbage) is skipped: false.
//
//   IPv4 (RFC 791)                         IPv6 (RFC 8200)
//   +-+-+-+-+--------+----------------+    +----+--------+------------+--------+-----+
//   |v|ihl|  tos   |  total length  |    |vtcf| payload len | next hdr | hops | ...
//   +--------------+-+--------------+-+    +----+-------------+----------+------+-----+
//   |  id          |flags|frag offset |    | source (16) | destination (16) | ext hdrs...
//   | ttl | proto  |   checksum       |
//   | source (4)   | destination (4)  | options...
//
//   TCP (RFC 9293)
//   | src port | dst port | seq (4) | ack (4) | off | flags | window | csum | urg | options |
bool decode_tcp(std::uint32_t linktype, std::span<const std::uint8_t> frame, tcp_packet& out) {
  byte_reader r(frame);
  l3 kind = l3::none;
  switch (linktype) {
    case kLinkEthernet: {
      std::uint16_t type = 0;
      if (!r.skip(12) || !r.read_u16(type)) {
        return false;
      }
      // 802.1Q / 802.1ad tags, bounded.
      for (int tags = 0; tags < 4 && (type == 0x8100 || type == 0x88a8 || type == 0x9100); ++tags) {
        if (!r.skip(2) || !r.read_u16(type)) {
          return false;
        }
      }
      kind = from_ethertype(type);
      break;
    }
    case kLinkSll: {
      std::uint16_t type = 0;
      if (!r.skip(14) || !r.read_u16(type)) {
        return false;
      }
      kind = from_ethertype(type);
      break;
    }
    case kLinkSll2: {
      std::uint16_t type = 0;
      if (!r.read_u16(type) || !r.skip(18)) {
        return false;
      }
      kind = from_ethertype(type);
      break;
    }
    case kLinkNull: {
      std::uint32_t af = 0;
      if (!r.read_u32(af)) {
        return false;
      }
      // Host order of the capturing machine: try both.
      kind = from_af(af);
      if (kind == l3::none) {
        kind = from_af(endian_reader::swap32(af));
      }
      break;
    }
    case kLinkLoop: {
      std::uint32_t af = 0;
      if (!r.read_u32(af)) {
        return false;
      }
      kind = from_af(af);
      break;
    }
    case kLinkRaw:
    case kLinkRawBsd12:
    case kLinkRawBsd14:
      kind = l3::peek;
      break;
    case kLinkIpv4:
      kind = l3::v4;
      break;
    case kLinkIpv6:
      kind = l3::v6;
      break;
    default:
      return false;
  }
  if (kind == l3::peek) {
    std::uint8_t first = 0;
    if (!r.peek_u8(first)) {
      return false;
    }
    kind = (first >> 4) == 4 ? l3::v4 : (first >> 4) == 6 ? l3::v6 : l3::none;
  }

  byte_reader tcp;
  if (kind == l3::v4) {
    std::uint8_t vihl = 0;
    std::uint8_t tos = 0;
    std::uint16_t total = 0;
    std::uint16_t id = 0;
    std::uint16_t frag = 0;
    std::uint8_t ttl = 0;
    std::uint8_t proto = 0;
    std::uint16_t csum = 0;
    std::span<const std::uint8_t> src;
    std::span<const std::uint8_t> dst;
    if (!r.read_u8(vihl) || !r.read_u8(tos) || !r.read_u16(total) || !r.read_u16(id) ||
        !r.read_u16(frag) || !r.read_u8(ttl) || !r.read_u8(proto) || !r.read_u16(csum) ||
        !r.read_bytes(4, src) || !r.read_bytes(4, dst)) {
      return false;
    }
    std::size_t ihl = std::size_t{static_cast<std::uint8_t>(vihl & 0x0f)} * 4;
    // Fragments (MF set or an offset) cannot be read on their own: skipped.
    if ((vihl >> 4) != 4 || ihl < 20 || total < ihl || proto != 6 || (frag & 0x3fff) != 0 ||
        !r.skip(ihl - 20)) {
      return false;
    }
    // Ethernet pads short frames: the IP total length says where the datagram ends. A frame cut
    // by the snap length holds less; use what is there.
    std::size_t body = std::min<std::size_t>(total - ihl, r.remaining());
    if (!r.read_sub(body, tcp)) {
      return false;
    }
    out.src = {};
    out.dst = {};
    out.src.ip[10] = out.src.ip[11] = 0xff;
    out.dst.ip[10] = out.dst.ip[11] = 0xff;
    std::copy(src.begin(), src.end(), out.src.ip.begin() + 12);
    std::copy(dst.begin(), dst.end(), out.dst.ip.begin() + 12);
  } else if (kind == l3::v6) {
    std::uint32_t vtf = 0;
    std::uint16_t plen = 0;
    std::uint8_t next = 0;
    std::uint8_t hops = 0;
    std::span<const std::uint8_t> src;
    std::span<const std::uint8_t> dst;
    if (!r.read_u32(vtf) || !r.read_u16(plen) || !r.read_u8(next) || !r.read_u8(hops) ||
        !r.read_bytes(16, src) || !r.read_bytes(16, dst) || (vtf >> 28) != 6) {
      return false;
    }
    byte_reader payload;
    if (!r.read_sub(std::min<std::size_t>(plen, r.remaining()), payload)) {
      return false;
    }
    // Extension headers (hop-by-hop, routing, destination options), bounded; a fragment
    // header means a fragment: skipped.
    for (int ext = 0; ext < 8 && (next == 0 || next == 43 || next == 60); ++ext) {
      std::uint8_t hdr_len = 0;
      if (!payload.read_u8(next) || !payload.read_u8(hdr_len) ||
          !payload.skip(std::size_t{hdr_len} * 8 + 6)) {
        return false;
      }
    }
    if (next != 6) {
      return false;
    }
    tcp = payload;
    out.src = {};
    out.dst = {};
    out.src.v6 = out.dst.v6 = true;
    std::copy(src.begin(), src.end(), out.src.ip.begin());
    std::copy(dst.begin(), dst.end(), out.dst.ip.begin());
  } else {
    return false;
  }

  std::uint16_t sport = 0;
  std::uint16_t dport = 0;
  std::uint32_t seq = 0;
  std::uint32_t ack = 0;
  std::uint8_t off = 0;
  std::uint8_t flags = 0;
  if (!tcp.read_u16(sport) || !tcp.read_u16(dport) || !tcp.read_u32(seq) || !tcp.read_u32(ack) ||
      !tcp.read_u8(off) || !tcp.read_u8(flags)) {
    return false;
  }
  std::size_t hdr = std::size_t{static_cast<std::uint8_t>(off >> 4)} * 4;
  if (hdr < 20 || !tcp.skip(hdr - 14)) {
    return false;
  }
  out.src.port = sport;
  out.dst.port = dport;
  out.seq = seq;
  out.flags = flags;
  out.payload = tcp.rest();
  return true;
}

// ts_to_ns: a timestamp in units of 1/`units_per_sec` seconds as nanoseconds, saturating.
std::int64_t ts_to_ns(std::uint64_t ts, std::uint64_t units_per_sec, std::int64_t offset_sec) {
  if (units_per_sec == 0) {
    return 0;
  }
  unsigned __int128 secs = ts / units_per_sec;
  unsigned __int128 frac = ts % units_per_sec;
  unsigned __int128 ns = secs * 1'000'000'000U + frac * 1'000'000'000U / units_per_sec;
  __int128 v = static_cast<__int128>(ns) + static_cast<__int128>(offset_sec) * 1'000'000'000;
  constexpr __int128 kMax = INT64_MAX;
  constexpr __int128 kMin = INT64_MIN;
  return static_cast<std::int64_t>(std::clamp(v, kMin, kMax));
}

// collector: assigns conversations their tshark-style index in order of first appearance and
// keeps only the packets of the one asked for.
struct collector {
  std::size_t want = 0;
  std::size_t max_packets = 0;
  std::size_t max_streams = 0;
  std::size_t untracked_frames = 0;
  std::map<std::pair<endpoint_key, endpoint_key>, std::size_t> seen;
  std::optional<std::pair<endpoint_key, endpoint_key>> wanted_key;
  std::vector<tcp_packet> packets;
  std::size_t frames = 0;
  std::size_t tcp_frames = 0;
  std::size_t unsupported_link_frames = 0;

  // frame: one captured frame. Returns false when the file has too many packets.
  bool frame(std::uint32_t linktype, std::span<const std::uint8_t> data, std::int64_t ts_ns) {
    if (++frames > max_packets) {
      return false;
    }
    if (!link_supported(linktype)) {
      ++unsupported_link_frames;
      return true;
    }
    tcp_packet p;
    if (!decode_tcp(linktype, data, p)) {
      return true;
    }
    ++tcp_frames;
    p.ts_ns = ts_ns;
    p.index = frames;
    auto key = std::minmax(p.src, p.dst);
    std::pair<endpoint_key, endpoint_key> k{key.first, key.second};
    auto it = seen.find(k);
    if (it == seen.end()) {
      // Bounded: one map entry per conversation, at most max_streams of them.
      if (seen.size() >= max_streams) {
        ++untracked_frames;
        return true;
      }
      it = seen.emplace(k, seen.size()).first;
    }
    if (it->second == want) {
      wanted_key = k;
      packets.push_back(p);
    }
    return true;
  }
};

bool read_pcap(std::span<const std::uint8_t> data, collector& c, std::string& error) {
  byte_reader head(data);
  std::uint32_t magic = 0;
  if (!head.read_u32(magic)) {
    error = "truncated pcap header";
    return false;
  }
  bool little = false;
  std::uint64_t units = 1'000'000;
  switch (magic) {
    case 0xa1b2c3d4:
      break;
    case 0xd4c3b2a1:
      little = true;
      break;
    case 0xa1b23c4d:
      units = 1'000'000'000;
      break;
    case 0x4d3cb2a1:
      little = true;
      units = 1'000'000'000;
      break;
    default:
      error = "not a pcap file (bad magic)";
      return false;
  }
  endian_reader r(head, little);
  std::uint16_t major = 0;
  std::uint16_t minor = 0;
  std::uint32_t zone = 0;
  std::uint32_t sigfigs = 0;
  std::uint32_t snaplen = 0;
  std::uint32_t network = 0;
  if (!r.u16(major) || !r.u16(minor) || !r.u32(zone) || !r.u32(sigfigs) || !r.u32(snaplen) ||
      !r.u32(network)) {
    error = "truncated pcap header (24 bytes expected)";
    return false;
  }
  if (major != 2) {
    error = "unsupported pcap version " + std::to_string(major) + "." + std::to_string(minor);
    return false;
  }
  // The upper bits of `network` may carry FCS information; the link type is the low 16.
  std::uint32_t linktype = network & 0xffff;
  std::size_t record = 0;
  while (!r.raw().empty()) {
    ++record;
    std::uint32_t sec = 0;
    std::uint32_t frac = 0;
    std::uint32_t incl = 0;
    std::uint32_t orig = 0;
    std::span<const std::uint8_t> frame;
    if (!r.u32(sec) || !r.u32(frac) || !r.u32(incl) || !r.u32(orig)) {
      error = "pcap truncated in the header of packet " + std::to_string(record);
      return false;
    }
    if (!r.raw().read_bytes(incl, frame)) {
      error = "pcap truncated in packet " + std::to_string(record) + " (" + std::to_string(incl) +
              " bytes announced, " + std::to_string(r.raw().remaining()) + " left)";
      return false;
    }
    std::int64_t ts = ts_to_ns(std::uint64_t{sec} * units + frac, units, 0);
    if (!c.frame(linktype, frame, ts)) {
      error = "too many packets";
      return false;
    }
  }
  return true;
}

struct pcapng_iface {
  std::uint32_t linktype = 0;
  std::uint64_t units = 1'000'000;  // if_tsresol, default 10^-6
  std::int64_t offset_sec = 0;      // if_tsoffset
};

// parse_idb_options: if_tsresol (9) and if_tsoffset (14) from an IDB's options.
bool parse_idb_options(endian_reader& r, pcapng_iface& iface, std::string& error) {
  for (int n = 0; n < 1024 && r.raw().remaining() >= 4; ++n) {
    std::uint16_t code = 0;
    std::uint16_t len = 0;
    if (!r.u16(code) || !r.u16(len)) {
      return true;
    }
    if (code == 0) {
      return true;
    }
    std::size_t padded = (std::size_t{len} + 3) / 4 * 4;
    byte_reader value;
    if (!r.raw().read_sub(std::min<std::size_t>(padded, r.raw().remaining()), value)) {
      error = "pcapng interface option cut short";
      return false;
    }
    if (code == 9 && len == 1) {
      std::uint8_t res = 0;
      if (!value.read_u8(res)) {
        return false;
      }
      std::uint32_t exp = res & 0x7fU;
      if ((res & 0x80) != 0) {
        if (exp > 63) {
          error = "pcapng if_tsresol out of range";
          return false;
        }
        iface.units = std::uint64_t{1} << exp;
      } else {
        if (exp > 19) {
          error = "pcapng if_tsresol out of range";
          return false;
        }
        iface.units = 1;
        for (std::uint32_t i = 0; i < exp; ++i) {
          iface.units *= 10;
        }
      }
    } else if (code == 14 && len == 8) {
      endian_reader v(value, r.little());
      std::uint64_t off = 0;
      if (!v.u64(off)) {
        return false;
      }
      iface.offset_sec = static_cast<std::int64_t>(off);
    }
  }
  return true;
}

// read_pcapng: walk the blocks of every section.
//
//   block:  | type (4) | total length (4) | body ... | total length (4) |
//   SHB  0x0A0D0D0A: | byte-order magic 0x1A2B3C4D | major 1 | minor | section length (8) | opts |
//   IDB  1: | linktype (2) | reserved (2) | snaplen (4) | options (if_tsresol, if_tsoffset) |
//   EPB  6: | interface (4) | ts high (4) | ts low (4) | captured (4) | original (4) | data |
//   SPB  3: | original (4) | data (captured = min(original, body - 4)) |
//   PB   2: | interface (2) | drops (2) | ts high | ts low | captured | original | data |
bool read_pcapng(std::span<const std::uint8_t> data, collector& c, std::string& error) {
  constexpr std::uint32_t kShb = 0x0A0D0D0A;
  constexpr std::size_t kMaxInterfaces = 4096;
  byte_reader all(data);
  bool little = false;
  bool in_section = false;
  std::vector<pcapng_iface> ifaces;
  std::size_t block_no = 0;
  while (!all.empty()) {
    ++block_no;
    std::string where = "pcapng block " + std::to_string(block_no);
    std::uint32_t type_be = 0;
    if (all.remaining() < 12) {
      error = where + ": truncated block header";
      return false;
    }
    byte_reader hdr = all;
    if (!hdr.read_u32(type_be)) {
      error = where + ": truncated block header";
      return false;
    }
    if (type_be == kShb) {
      // The byte-order magic after the length decides how this section is read.
      byte_reader probe = hdr;
      std::uint32_t len_raw = 0;
      std::uint32_t magic = 0;
      if (!probe.read_u32(len_raw) || !probe.read_u32(magic)) {
        error = where + ": truncated section header";
        return false;
      }
      if (magic == 0x1A2B3C4D) {
        little = false;
      } else if (magic == 0x4D3C2B1A) {
        little = true;
      } else {
        error = where + ": bad byte-order magic in section header";
        return false;
      }
      in_section = true;
      ifaces.clear();
    } else if (!in_section) {
      error = "not a pcapng file (no section header block first)";
      return false;
    }
    endian_reader er(all, little);
    std::uint32_t type = 0;
    std::uint32_t total = 0;
    if (!er.u32(type) || !er.u32(total)) {
      error = where + ": truncated block header";
      return false;
    }
    if (total < 12 || total % 4 != 0) {
      error = where + ": bad block length " + std::to_string(total);
      return false;
    }
    byte_reader body_raw;
    if (!er.raw().read_sub(total - 12, body_raw)) {
      error = where + ": truncated (" + std::to_string(total) + " bytes announced, " +
              std::to_string(er.raw().remaining() + 8) + " left)";
      return false;
    }
    std::uint32_t trailer = 0;
    if (!er.u32(trailer) || trailer != total) {
      error = where + ": trailing length does not match";
      return false;
    }
    all = er.raw();
    endian_reader body(body_raw, little);

    switch (type) {
      case kShb: {
        std::uint32_t magic = 0;
        std::uint16_t major = 0;
        std::uint16_t minor = 0;
        if (!body.u32(magic) || !body.u16(major) || !body.u16(minor)) {
          error = where + ": truncated section header";
          return false;
        }
        if (major != 1) {
          error = where + ": unsupported pcapng version " + std::to_string(major);
          return false;
        }
        break;
      }
      case 1: {  // IDB
        pcapng_iface iface;
        std::uint16_t linktype = 0;
        std::uint16_t reserved = 0;
        std::uint32_t snaplen = 0;
        if (!body.u16(linktype) || !body.u16(reserved) || !body.u32(snaplen)) {
          error = where + ": truncated interface description";
          return false;
        }
        iface.linktype = linktype;
        if (!parse_idb_options(body, iface, error)) {
          error = where + ": " + error;
          return false;
        }
        if (ifaces.size() >= kMaxInterfaces) {
          error = where + ": too many interfaces";
          return false;
        }
        ifaces.push_back(iface);
        break;
      }
      case 6:    // EPB
      case 2: {  // obsolete Packet Block
        std::uint32_t iface_id = 0;
        std::uint32_t hi = 0;
        std::uint32_t lo = 0;
        std::uint32_t captured = 0;
        std::uint32_t original = 0;
        bool ok = true;
        if (type == 6) {
          ok = body.u32(iface_id);
        } else {
          std::uint16_t id16 = 0;
          std::uint16_t drops = 0;
          ok = body.u16(id16) && body.u16(drops);
          iface_id = id16;
        }
        std::span<const std::uint8_t> frame;
        if (!ok || !body.u32(hi) || !body.u32(lo) || !body.u32(captured) || !body.u32(original) ||
            !body.raw().read_bytes(captured, frame)) {
          error = where + ": truncated packet block";
          return false;
        }
        if (iface_id >= ifaces.size()) {
          error = where + ": packet names interface " + std::to_string(iface_id) +
                  " which was not described";
          return false;
        }
        const pcapng_iface& iface = ifaces[iface_id];
        std::int64_t ts = ts_to_ns(std::uint64_t{hi} << 32 | lo, iface.units, iface.offset_sec);
        if (!c.frame(iface.linktype, frame, ts)) {
          error = "too many packets";
          return false;
        }
        break;
      }
      case 3: {  // SPB: no timestamp, interface 0
        std::uint32_t original = 0;
        if (!body.u32(original)) {
          error = where + ": truncated simple packet block";
          return false;
        }
        if (ifaces.empty()) {
          error = where + ": simple packet block before any interface description";
          return false;
        }
        std::span<const std::uint8_t> frame;
        std::size_t captured = std::min<std::size_t>(original, body.raw().remaining());
        if (!body.raw().read_bytes(captured, frame)) {
          error = where + ": truncated simple packet block";
          return false;
        }
        if (!c.frame(ifaces.front().linktype, frame, 0)) {
          error = "too many packets";
          return false;
        }
        break;
      }
      default:
        break;  // name resolution, statistics, custom blocks: not needed
    }
  }
  if (!in_section) {
    error = "empty pcapng file";
    return false;
  }
  return true;
}

// ip_text: inet_ntop's text of the address (what Asio's to_string gives; no Asio here, so this
// target stays a pure file parser).
std::string ip_text(const endpoint_key& k) {
  std::array<char, INET6_ADDRSTRLEN> buf{};
  const int family = k.v6 ? AF_INET6 : AF_INET;
  const void* src = k.v6 ? static_cast<const void*>(k.ip.data()) : k.ip.data() + 12;
  if (::inet_ntop(family, src, buf.data(), buf.size()) == nullptr) {
    return {};
  }
  return buf.data();
}

// reassemble: one direction's packets (in file order) into bytes and segments.
void reassemble(const std::vector<const tcp_packet*>& pkts, std::uint64_t max_bytes,
                stream_side& side, std::vector<std::size_t>& seg_packet_index) {
  struct piece {
    std::int64_t rel;
    const tcp_packet* p;
  };
  std::optional<std::uint32_t> base;
  for (const tcp_packet* p : pkts) {
    if ((p->flags & kSyn) != 0) {
      base = p->seq + 1;  // the SYN takes one sequence number
      break;
    }
  }
  std::vector<piece> pieces;
  for (const tcp_packet* p : pkts) {
    side.fin = side.fin || (p->flags & kFin) != 0;
    side.rst = side.rst || (p->flags & kRst) != 0;
    if (p->payload.empty()) {
      continue;
    }
    std::uint32_t seq = p->seq + (((p->flags & kSyn) != 0) ? 1U : 0U);
    if (!base) {
      base = seq;
    }
    // Signed 32-bit distance: correct across sequence-number wrap-around.
    auto rel = static_cast<std::int64_t>(static_cast<std::int32_t>(seq - *base));
    pieces.push_back({rel, p});
  }
  if (pieces.empty()) {
    return;
  }
  // Without a SYN the first packet may not be the lowest (reordering): start at the lowest.
  std::int64_t lowest = std::min_element(pieces.begin(), pieces.end(), [](auto& a, auto& b) {
                          return a.rel < b.rel;
                        })->rel;
  for (auto& pc : pieces) {
    pc.rel -= lowest;
  }
  if (lowest < 0 && base) {
    // A SYN was seen but data precedes it in sequence space: keep it but mark the oddity.
    side.gap = true;
  }
  std::stable_sort(pieces.begin(), pieces.end(),
                   [](const piece& a, const piece& b) { return a.rel < b.rel; });
  std::uint64_t end = 0;
  for (const piece& pc : pieces) {
    auto rel = static_cast<std::uint64_t>(pc.rel);
    if (rel > end) {
      side.gap = true;  // a hole: what follows cannot be placed in the byte sequence
      break;
    }
    std::uint64_t stop = rel + pc.p->payload.size();
    if (stop <= end) {
      continue;  // a retransmission of bytes already placed
    }
    std::uint64_t skip = end - rel;
    std::uint64_t take = stop - end;
    if (end + take > max_bytes) {
      take = max_bytes - end;
      side.truncated = true;
    }
    if (take == 0) {
      break;
    }
    auto first =
        pc.p->payload.subspan(static_cast<std::size_t>(skip), static_cast<std::size_t>(take));
    side.bytes.insert(side.bytes.end(), first.begin(), first.end());
    segment s;
    s.offset = end;
    s.len = static_cast<std::uint32_t>(take);
    s.ts_ns = pc.p->ts_ns;
    side.segments.push_back(s);
    seg_packet_index.push_back(pc.p->index);
    end += take;
    if (side.truncated) {
      break;
    }
  }
}

// fill_peer_bytes: for each segment of `a`, the bytes of `b` captured before it (file order).
void fill_peer_bytes(stream_side& a, const std::vector<std::size_t>& a_idx, const stream_side& b,
                     const std::vector<std::size_t>& b_idx) {
  std::vector<std::pair<std::size_t, std::uint64_t>> order;  // (packet index, len)
  order.reserve(b.segments.size());
  for (std::size_t i = 0; i < b.segments.size(); ++i) {
    order.emplace_back(b_idx[i], b.segments[i].len);
  }
  std::sort(order.begin(), order.end());
  std::vector<std::uint64_t> prefix(order.size() + 1, 0);
  for (std::size_t i = 0; i < order.size(); ++i) {
    prefix[i + 1] = prefix[i] + order[i].second;
  }
  for (std::size_t i = 0; i < a.segments.size(); ++i) {
    auto it = std::lower_bound(order.begin(), order.end(),
                               std::pair<std::size_t, std::uint64_t>{a_idx[i], 0});
    a.segments[i].peer_bytes_before = prefix[static_cast<std::size_t>(it - order.begin())];
  }
}

}  // namespace

bool looks_like_capture(std::span<const std::uint8_t> head) {
  byte_reader r(head);
  std::uint32_t magic = 0;
  if (!r.read_u32(magic)) {
    return false;
  }
  return magic == 0xa1b2c3d4 || magic == 0xd4c3b2a1 || magic == 0xa1b23c4d || magic == 0x4d3cb2a1 ||
         magic == 0x0A0D0D0A;
}

bool read_tcp_stream(std::span<const std::uint8_t> data, const read_options& opts, tcp_stream& out,
                     std::string& error) {
  out = tcp_stream{};
  error.clear();
  collector c;
  c.want = opts.stream_index;
  c.max_packets = opts.max_packets;
  c.max_streams = opts.max_streams;
  byte_reader probe(data);
  std::uint32_t magic = 0;
  if (!probe.read_u32(magic)) {
    error = "too short to be a capture file";
    return false;
  }
  bool ok = magic == 0x0A0D0D0A ? read_pcapng(data, c, error) : read_pcap(data, c, error);
  if (!ok) {
    return false;
  }
  out.streams = c.seen.size();
  if (c.tcp_frames == 0) {
    error = c.frames == 0 ? "no packets in the capture"
            : c.unsupported_link_frames == c.frames
                ? "no packets of a supported link type (Ethernet, Linux cooked, raw IP, loopback)"
                : "no TCP packets in the capture";
    return false;
  }
  if (!c.wanted_key) {
    error = "no TCP stream " + std::to_string(opts.stream_index) + " (the capture has " +
            std::to_string(c.seen.size()) + ")";
    return false;
  }
  out.index = opts.stream_index;
  out.packets = c.packets.size();

  // The client sent the SYN; else received the SYN-ACK; else sent the first packet.
  endpoint_key client = c.packets.front().src;
  for (const tcp_packet& p : c.packets) {
    if ((p.flags & kSyn) != 0) {
      out.saw_syn = true;
      client = (p.flags & kAck) == 0 ? p.src : p.dst;
      break;
    }
  }
  std::vector<const tcp_packet*> from_client;
  std::vector<const tcp_packet*> from_server;
  endpoint_key server;
  for (const tcp_packet& p : c.packets) {
    if (p.src == client) {
      from_client.push_back(&p);
    } else {
      from_server.push_back(&p);
      server = p.src;
    }
  }
  if (from_server.empty()) {
    // Only the client spoke: the server is the destination of its packets.
    server = c.packets.front().src == client ? c.packets.front().dst : c.packets.front().src;
  }
  out.client.ip = ip_text(client);
  out.client.port = client.port;
  out.server.ip = ip_text(server);
  out.server.port = server.port;
  std::vector<std::size_t> client_idx;
  std::vector<std::size_t> server_idx;
  reassemble(from_client, opts.max_stream_bytes, out.client, client_idx);
  reassemble(from_server, opts.max_stream_bytes, out.server, server_idx);
  fill_peer_bytes(out.client, client_idx, out.server, server_idx);
  fill_peer_bytes(out.server, server_idx, out.client, client_idx);
  return true;
}

bool read_tcp_stream_file(const std::filesystem::path& path, const read_options& opts,
                          tcp_stream& out, std::string& error) {
  std::error_code ec;
  auto size = std::filesystem::file_size(path, ec);
  if (ec) {
    error = path.string() + ": " + ec.message();
    return false;
  }
  if (size > opts.max_file_bytes) {
    error = path.string() + ": " + std::to_string(size) + " bytes, more than the limit of " +
            std::to_string(opts.max_file_bytes);
    return false;
  }
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    error = path.string() + ": cannot open";
    return false;
  }
  std::vector<std::uint8_t> data(static_cast<std::size_t>(size));
  in.read(reinterpret_cast<char*>(data.data()), static_cast<std::streamsize>(data.size()));
  if (in.gcount() != static_cast<std::streamsize>(data.size())) {
    error = path.string() + ": short read";
    return false;
  }
  if (!read_tcp_stream(data, opts, out, error)) {
    error = path.string() + ": " + error;
    return false;
  }
  // `out` owns copies of the bytes; nothing borrows `data` after this.
  return true;
}

}  // namespace linesman::capture
