// flight_buffer: one side's first-flight bytes during inspection, grown in steps as they arrive
// (kSteps), never beyond kFlightBufferBytes (proxy/inspect.hpp).
//
// Why grown and not allocated whole: a connection used to take the full 16.7 KB on its first
// readable byte and keep it until inspection ended, waiting for more with it. A client that
// dribbles its hello (the peek timeout ends it, 5 s later) or sends 16 bytes and leaves then
// held 16.7 KB for a few bytes. In the soak (tests/soak, 2,000 dribbling clients that all start
// again every 5 s) these blocks came and went in waves of 33 MB between the small allocations of
// the other connections on the same worker thread; the worker heaps fragmented and RSS kept rising
// for the whole run (bench/results/ 2026-12-03-soak20b/README.md has the figures). Now a buffer is
// the size of what it holds: 256 bytes for a few, 2 KB for a common hello, the full size only for a
// hello that needs it.
//
// Owned by its flight (one connection, one thread); get() is null until the first bytes. The
// parts of std::unique_ptr<std::uint8_t[]>'s interface the connection uses are kept.
#pragma once

#include "proxy/inspect.hpp"

#include <array>
#include <cstdint>
#include <cstring>
#include <memory>
#include <span>

namespace linesman::proxy {

class flight_buffer {
 public:
  // kSteps: the sizes a buffer takes, smallest first: a few bytes (a dribbling client, a short
  // plaintext request), a typical ClientHello (517 to about 1,900 bytes from today's browsers),
  // then everything inspection may hold.
  static constexpr std::array<std::size_t, 3> kSteps{256, 2048, kFlightBufferBytes};

  [[nodiscard]] std::uint8_t* get() const noexcept { return data_.get(); }
  explicit operator bool() const noexcept { return data_ != nullptr; }
  [[nodiscard]] std::size_t capacity() const noexcept { return capacity_; }
  void reset() noexcept {
    data_.reset();
    capacity_ = 0;
  }

  // append: `bytes` (read into a scratch buffer) copied after the `len` held, the buffer grown
  // first to the smallest step that holds both (the `len` bytes kept). Allocates even for no
  // bytes: get() is then non-null, as the connection tells "read once" from "never read" by it.
  // len + bytes.size() must not exceed kFlightBufferBytes.
  void append(std::size_t len, std::span<const std::uint8_t> bytes) {
    const std::size_t need = step_for(len + bytes.size());
    if (!data_ || capacity_ < need) {
      allocate(need, data_ ? std::span<const std::uint8_t>(data_.get(), len)
                           : std::span<const std::uint8_t>());
    }
    if (!bytes.empty()) {
      std::memcpy(data_.get() + len, bytes.data(), bytes.size());
    }
  }

  // assign: a buffer holding a copy of `bytes` only (at most kFlightBufferBytes).
  void assign(std::span<const std::uint8_t> bytes) {
    reset();
    append(0, bytes);
  }

  // room: where an asynchronous read goes after the `len` bytes held: the rest of the full
  // kFlightBufferBytes, the buffer grown to it first (the `len` bytes kept). Such a read cannot
  // know how much will come, and a read cut short by a small buffer would split one arrival into
  // two reads (the record's tls.hello_reads and sni_read count arrivals). Empty only once
  // len == kFlightBufferBytes.
  [[nodiscard]] std::span<std::uint8_t> room(std::size_t len) {
    if (!data_ || capacity_ < kFlightBufferBytes) {
      allocate(kFlightBufferBytes, data_ ? std::span<const std::uint8_t>(data_.get(), len)
                                         : std::span<const std::uint8_t>());
    }
    return {data_.get() + len, capacity_ - len};
  }

 private:
  static constexpr std::size_t step_for(std::size_t n) {
    for (const auto s : kSteps) {
      if (n <= s) {
        return s;
      }
    }
    return kFlightBufferBytes;
  }

  void allocate(std::size_t capacity, std::span<const std::uint8_t> keep) {
    auto next = std::make_unique_for_overwrite<std::uint8_t[]>(capacity);
    if (!keep.empty()) {
      std::memcpy(next.get(), keep.data(), keep.size());
    }
    data_ = std::move(next);
    capacity_ = capacity;
  }

  std::unique_ptr<std::uint8_t[]> data_;
  std::size_t capacity_ = 0;
};

}  // namespace linesman::proxy
