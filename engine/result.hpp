#pragma once

#include <optional>
#include <utility>
#include <variant>

#include "engine/error.hpp"

namespace imengine {

// A value or a failure. The engine core has no CAF, so it cannot use
// caf::expected; actors convert at their boundary.
template <class T>
class result {
public:
  result(T value) : v_(std::move(value)) {}
  result(failure f) : v_(std::move(f)) {}
  result(errc code, std::string msg) : v_(failure{code, std::move(msg)}) {}

  explicit operator bool() const noexcept { return v_.index() == 0; }
  T& operator*() { return std::get<0>(v_); }
  const T& operator*() const { return std::get<0>(v_); }
  T* operator->() { return &std::get<0>(v_); }
  const T* operator->() const { return &std::get<0>(v_); }
  const failure& error() const { return std::get<1>(v_); }

private:
  std::variant<T, failure> v_;
};

} // namespace imengine
