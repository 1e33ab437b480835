// boxed: an optional value kept on the heap, for the record's observations that most connections
// never fill (TLS, PROXY protocol, transparent mode). An inline std::optional costs every
// connection its full size for its whole life, and an idle connection's memory is mostly its
// record; a boxed one costs a pointer until it is set. It offers the parts of std::optional's
// interface the code uses; copies are deep (interim records copy the record).
#pragma once

#include <memory>
#include <optional>
#include <utility>

namespace linesman::proxy {

template <class T>
class boxed {
 public:
  boxed() = default;
  boxed(std::nullopt_t) {}  // NOLINT(google-explicit-constructor): as std::optional
  boxed(const T& v) : p_(std::make_unique<T>(v)) {}        // NOLINT(google-explicit-constructor)
  boxed(T&& v) : p_(std::make_unique<T>(std::move(v))) {}  // NOLINT(google-explicit-constructor)
  boxed(const boxed& o) : p_(o.p_ ? std::make_unique<T>(*o.p_) : nullptr) {}
  boxed(boxed&&) noexcept = default;
  ~boxed() = default;

  boxed& operator=(const boxed& o) {
    if (this != &o) {
      p_ = o.p_ ? std::make_unique<T>(*o.p_) : nullptr;
    }
    return *this;
  }
  boxed& operator=(boxed&&) noexcept = default;
  boxed& operator=(std::nullopt_t) {
    p_.reset();
    return *this;
  }
  boxed& operator=(T v) {
    if (p_) {
      *p_ = std::move(v);
    } else {
      p_ = std::make_unique<T>(std::move(v));
    }
    return *this;
  }
  boxed& operator=(std::optional<T> v) {
    if (v) {
      *this = std::move(*v);
    } else {
      p_.reset();
    }
    return *this;
  }

  [[nodiscard]] bool has_value() const { return p_ != nullptr; }
  explicit operator bool() const { return p_ != nullptr; }
  T& operator*() { return *p_; }
  const T& operator*() const { return *p_; }
  T* operator->() { return p_.get(); }
  const T* operator->() const { return p_.get(); }

 private:
  std::unique_ptr<T> p_;
};

}  // namespace linesman::proxy
