#include "codegen/parameters.h"

#include "gtest/gtest.h"

namespace nprpc {
namespace codegen {
namespace {

TEST(ParametersTest, EmptyMeansDefaults) {
  absl::StatusOr<GeneratorParameters> p = ParseGeneratorParameters("");
  ASSERT_TRUE(p.ok());
  EXPECT_FALSE(p->generate_mock);
}

TEST(ParametersTest, GenerateMock) {
  EXPECT_TRUE(ParseGeneratorParameters("generate_mock=true")->generate_mock);
  EXPECT_TRUE(ParseGeneratorParameters("generate_mock")->generate_mock);
  EXPECT_FALSE(ParseGeneratorParameters("generate_mock=false")->generate_mock);
}

TEST(ParametersTest, UnknownOptionsAndBadValuesAreErrors) {
  absl::StatusOr<GeneratorParameters> p = ParseGeneratorParameters("generate_mock=true,frob=1");
  ASSERT_FALSE(p.ok());
  EXPECT_NE(p.status().message().find("unknown option 'frob'"), absl::string_view::npos);
  p = ParseGeneratorParameters("generate_mock=yes");
  ASSERT_FALSE(p.ok());
  EXPECT_NE(p.status().message().find("true or false"), absl::string_view::npos);
}

}  // namespace
}  // namespace codegen
}  // namespace nprpc
