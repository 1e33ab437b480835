// test_data: where the unit tests' data lives (tests/data, passed in as LINESMAN_TEST_DATA) and
// how a test reads a file from it. One definition each, shared by every test folder.
#pragma once

#include <cstdint>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <string>
#include <vector>

namespace linesman::test {

// Folders under tests/data as strings ending in '/', for tests that append a file name.
inline const std::string kDoctorData = LINESMAN_TEST_DATA "/doctor/";
inline const std::string kLogsData = LINESMAN_TEST_DATA "/logs/";
// The corpus' ClientHello captures, one folder per client (tests/data/corpus/cases).
inline const std::filesystem::path kCorpusCases =
    std::filesystem::path(LINESMAN_TEST_DATA) / "corpus" / "cases";

// slurp: every byte of `p`; empty when it cannot be read (the caller's checks then fail).
inline std::vector<std::uint8_t> slurp(const std::filesystem::path& p) {
  std::ifstream in(p, std::ios::binary);
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

}  // namespace linesman::test
