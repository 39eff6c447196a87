// hrlctl resync | verify: asks hrld for a pass and follows it to the end:
// a progress bar on a terminal, plain lines otherwise, JSON lines with --json.
#pragma once

#include <string>

namespace hrl {

// mode: "checksum", "copy" or "verify". Exit status: 0 done (a verify found
// nothing), 3 a verify found ranges that differ, 1 an error.
int cmd_resync(const std::string& socket_path, const std::string& volume, const std::string& mode, bool as_json,
               bool wait);

}  // namespace hrl
