// Exception types thrown by the edgeface C++ kernels. bindings.cpp translates them to the
// Python classes of edgeface.errors (InvalidArgumentError, InvalidDTypeError, ImageError).
#pragma once

#include <stdexcept>
#include <string>

namespace edgeface {

// Wrong shape, size, value or parameter -> edgeface.errors.InvalidArgumentError (ValueError).
struct InvalidArgument : std::runtime_error {
    using std::runtime_error::runtime_error;
};

// Wrong dtype of an array or wrong Python type -> edgeface.errors.InvalidDTypeError (TypeError).
struct InvalidDType : std::runtime_error {
    using std::runtime_error::runtime_error;
};

// Unusable image (not HxWx3 uint8, empty, too large) -> edgeface.errors.ImageError (ValueError).
struct ImageError : std::runtime_error {
    using std::runtime_error::runtime_error;
};

// Limits shared by every kernel that takes an image.
constexpr long long kMaxImageSide = 32768;
constexpr long long kMaxImagePixels = 1LL << 28;
// Upper bound on the number of elements of any array a kernel allocates (1 GiB of float32).
constexpr long long kMaxOutputElements = 1LL << 28;

}  // namespace edgeface
