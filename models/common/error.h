// Errors. Library code throws; only main() turns an exception into a message and an exit code.
//   InputError  the user's input is wrong (scenario, trace, flag, impossible configuration): exit code 2.
//               Its message is one line that names file:line or the offending key.
#pragma once
#include <stdexcept>
#include <string>

namespace servesim {

class InputError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

}  // namespace servesim
