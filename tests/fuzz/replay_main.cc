// The `main` of every fuzz target built as a plain test: replays each file of
// the corpus directories given on the command line through
// LLVMFuzzerTestOneInput, then, for extra reach without a fuzzing engine, a
// fixed number of deterministic mutations of each file (byte flips, byte
// sets, truncations and duplications from a seeded PRNG). Built by g++ under
// Bazel; the same target sources link against libFuzzer in tools/fuzz.sh.
//
//   replay_main <corpus dir>... [--mutations=N]
//
// A violated invariant aborts (FUZZ_CHECK); the exit code is 0 when every
// input ran and at least one input was found.
#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <iterator>
#include <random>
#include <string>
#include <vector>

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size);

namespace {

std::string ReadFile(const std::filesystem::path& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
}

void Run(const std::string& input) {
  LLVMFuzzerTestOneInput(reinterpret_cast<const uint8_t*>(input.data()), input.size());
}

// One deterministic mutation of `input`.
std::string Mutate(const std::string& input, std::mt19937& rng) {
  std::string out = input;
  const int kinds = 5;
  switch (rng() % kinds) {
    case 0:  // flip a bit
      if (!out.empty()) out[rng() % out.size()] ^= static_cast<char>(1u << (rng() % 8));
      break;
    case 1:  // set a byte to an interesting value
      if (!out.empty()) {
        const char values[] = {0, 1, 0x7f, static_cast<char>(0x80), static_cast<char>(0xff)};
        out[rng() % out.size()] = values[rng() % sizeof(values)];
      }
      break;
    case 2:  // truncate
      if (!out.empty()) out.resize(rng() % out.size());
      break;
    case 3:  // duplicate the input (two frames back to back)
      out += input;
      break;
    default:  // insert a random byte
      out.insert(out.begin() + static_cast<std::ptrdiff_t>(out.empty() ? 0 : rng() % out.size()),
                 static_cast<char>(rng()));
      break;
  }
  return out;
}

}  // namespace

int main(int argc, char** argv) {
  int mutations = 50;
  std::vector<std::filesystem::path> files;
  for (int i = 1; i < argc; ++i) {
    if (std::strncmp(argv[i], "--mutations=", 12) == 0) {
      mutations = std::atoi(argv[i] + 12);
      continue;
    }
    std::filesystem::path dir(argv[i]);
    for (const auto& entry : std::filesystem::directory_iterator(dir)) {
      if (!entry.is_directory()) files.push_back(entry.path());
    }
  }
  std::sort(files.begin(), files.end());
  if (files.empty()) {
    std::cerr << "no corpus files found" << std::endl;
    return 1;
  }
  std::mt19937 rng(20240521);
  size_t runs = 0;
  for (const auto& file : files) {
    const std::string input = ReadFile(file);
    std::cout << "replaying " << file.filename().string() << " (" << input.size() << " bytes)"
              << std::endl;
    Run(input);
    ++runs;
    // Mutations of large inputs cost much and add little.
    const int n = input.size() > 65536 ? 2 : mutations;
    for (int m = 0; m < n; ++m) {
      Run(Mutate(input, rng));
      ++runs;
    }
  }
  std::cout << "replayed " << files.size() << " corpus files, " << runs << " inputs in all"
            << std::endl;
  return 0;
}
