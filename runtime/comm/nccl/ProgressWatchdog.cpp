// The stall decision and its polling thread (see ProgressWatchdog.h).
#include "shardc/comm/ProgressWatchdog.h"

#include "shardc/comm/Communicator.h"

#include <algorithm>

namespace shardc::rt {

void StallDetector::enqueued(int lane, uint32_t marker, int64_t step, std::string name,
                             Clock::time_point now) {
  Lane &l = lanes_[std::clamp(lane, 0, kLanes - 1)];
  if (l.pending.empty())
    l.headSince = now; // an idle stream starts the clock only now
  l.pending.push_back({marker, step, std::move(name)});
}

std::optional<std::string> StallDetector::observe(const Words &words, Clock::time_point now) {
  const Step *stuck = nullptr;
  int stuckLane = 0;
  for (int lane = 0; lane < kLanes; ++lane) {
    Lane &l = lanes_[lane];
    l.lastWord = words[lane];
    // Wrap-safe "the word has reached the marker": a lane's word only ever moves forward.
    while (!l.pending.empty() && static_cast<int32_t>(words[lane] - l.pending.front().marker) >= 0) {
      lastDone_ = std::max(lastDone_, l.pending.front().step);
      l.pending.pop_front();
      l.headSince = now;
    }
    if (!l.pending.empty() && now - l.headSince > timeout_ && (!stuck || l.pending.front().step < stuck->step)) {
      stuck = &l.pending.front();
      stuckLane = lane;
    }
  }
  if (fired_ || !stuck)
    return std::nullopt;
  fired_ = true;
  return "rank " + std::to_string(rank_) + " stuck at step " + std::to_string(stuck->step) + " (" +
         stuck->name + ") on the " + (stuckLane == 0 ? "compute" : "communication") + " stream: not done after " +
         formatDuration(timeout_) + " (" +
         (lastDone_ < 0 ? std::string("no step done yet") : "last done: step " + std::to_string(lastDone_)) +
         "; a peer rank may have died or be waiting elsewhere)";
}

ProgressWatchdog::ProgressWatchdog(int64_t rank, std::chrono::milliseconds timeout,
                                   std::function<StallDetector::Words()> read,
                                   std::function<void(const std::string &)> onStall,
                                   std::function<std::string()> check)
    : read_(std::move(read)), onStall_(std::move(onStall)), check_(std::move(check)),
      detector_(rank, timeout), rank_(rank) {
  nextMarker_ = read_(); // markers continue from what the word holds now
  thread_ = std::thread([this] { loop(); });
}

ProgressWatchdog::~ProgressWatchdog() {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    stop_ = true;
  }
  wake_.notify_all();
  thread_.join();
}

uint32_t ProgressWatchdog::enqueue(int64_t step, std::string name, int lane) {
  std::lock_guard<std::mutex> lock(mutex_);
  lane = std::clamp(lane, 0, StallDetector::kLanes - 1);
  uint32_t marker = ++nextMarker_[static_cast<size_t>(lane)];
  detector_.enqueued(lane, marker, step, std::move(name), StallDetector::Clock::now());
  return marker;
}

void ProgressWatchdog::beginRun() {
  std::lock_guard<std::mutex> lock(mutex_);
  nextMarker_ = {};
  detector_.reset();
}

void ProgressWatchdog::setTimeout(std::chrono::milliseconds t) {
  std::lock_guard<std::mutex> lock(mutex_);
  detector_.setTimeout(t);
  wake_.notify_all(); // a shorter timeout shortens the poll interval
}

std::string ProgressWatchdog::report() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return report_;
}

std::chrono::milliseconds ProgressWatchdog::pollInterval() const {
  // Fine enough to fire close to the timeout, coarse enough to cost nothing.
  return std::clamp(detector_.timeout() / 10, std::chrono::milliseconds(1),
                    std::chrono::milliseconds(100));
}

void ProgressWatchdog::loop() {
  std::unique_lock<std::mutex> lock(mutex_);
  while (!stop_) {
    wake_.wait_for(lock, pollInterval());
    if (stop_ || !report_.empty())
      continue;
    std::optional<std::string> fired = detector_.observe(read_(), StallDetector::Clock::now());
    if (!fired && check_) {
      lock.unlock(); // check_ may take NCCL's locks; never hold ours meanwhile
      std::string err = check_();
      lock.lock();
      if (!err.empty() && report_.empty())
        fired = "rank " + std::to_string(rank_) + ": " + err;
    }
    if (!fired)
      continue;
    report_ = *fired;
    lock.unlock();
    onStall_(*fired);
    lock.lock();
  }
}

} // namespace shardc::rt
