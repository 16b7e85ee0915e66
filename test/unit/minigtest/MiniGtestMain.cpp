// mini-gtest's main, as gtest_main's: parse the gtest flags, run every selected test.
#include "gtest/gtest.h"

int main(int argc, char **argv) {
  ::testing::InitGoogleTest(&argc, argv);
  return RUN_ALL_TESTS();
}
