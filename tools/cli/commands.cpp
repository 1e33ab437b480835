#include "tools/cli/commands.hpp"

namespace linesman::tools {

int& exit_code() {
  static int code = 0;
  return code;
}

}  // namespace linesman::tools
