// One all_to_all_v exchange as expert parallelism's dispatch does it, for any communicator:
// the counts first (an all_to_all of one i64 per member), then the chunks of those sizes.
// Member s sends (3s + 5r) % 4 elements to member r (world ranks), zero included; element k
// of that chunk is s*1000 + r*100 + k. Returns "" or what went wrong.
#pragma once

#include "shardc/comm/Communicator.h"

#include <string>
#include <vector>

namespace shardc::rt::commtest {

inline int64_t a2avCount(int64_t from, int64_t to) { return (3 * from + 5 * to) % 4; }

inline std::string checkAllToAllV(Communicator &comm, const CommGroup &g) {
  const int64_t n = g.size(), me = comm.rank();
  std::vector<int64_t> sendCounts(n), recvCounts(n);
  std::vector<float> in;
  for (int64_t j = 0; j < n; ++j) {
    sendCounts[j] = a2avCount(me, g.ranks[j]);
    for (int64_t k = 0; k < sendCounts[j]; ++k)
      in.push_back(float(me * 1000 + g.ranks[j] * 100 + k));
  }
  if (std::string err = comm.allToAll(g, sendCounts.data(), recvCounts.data(), 1, DType::I64); !err.empty())
    return "counts: " + err;
  int64_t total = 0;
  for (int64_t j = 0; j < n; ++j) {
    if (recvCounts[j] != a2avCount(g.ranks[j], me))
      return "count from member " + std::to_string(j) + " is " + std::to_string(recvCounts[j]);
    total += recvCounts[j];
  }
  std::vector<float> out(size_t(total) + 1, -1.0f); // one past the end must stay untouched
  if (std::string err = comm.allToAllV(g, in.data(), sendCounts.data(), out.data(), recvCounts.data(), DType::F32);
      !err.empty())
    return err;
  size_t at = 0;
  for (int64_t j = 0; j < n; ++j)
    for (int64_t k = 0; k < recvCounts[j]; ++k, ++at)
      if (out[at] != float(g.ranks[j] * 1000 + me * 100 + k))
        return "element " + std::to_string(k) + " from member " + std::to_string(j) + " is " + std::to_string(out[at]);
  if (out[at] != -1.0f)
    return "wrote past the received elements";
  return "";
}

} // namespace shardc::rt::commtest
