// The stall decision and its polling thread (see ProgressWatchdog.h).
#include "shardc/comm/ProgressWatchdog.h"

#include "shardc/comm/Communicator.h"

#include <algorithm>

namespace shardc::rt {

void StallDetector::enqueued(uint32_t marker, int64_t step, std::string name,
                             Clock::time_point now) {
  if (pending_.empty())
    headSince_ = now; // an idle stream starts the clock only now
  pending_.push_back({marker, step, std::move(name)});
}

std::optional<std::string> StallDetector::observe(uint32_t value, Clock::time_point now) {
  // Wrap-safe "value has reached marker": the word only ever moves forward.
  while (!pending_.empty() && static_cast<int32_t>(value - pending_.front().marker) >= 0) {
    lastDone_ = pending_.front().step;
    pending_.pop_front();
    headSince_ = now;
  }
  if (fired_ || pending_.empty() || now - headSince_ <= timeout_)
    return std::nullopt;
  fired_ = true;
  const Step &s = pending_.front();
  return "rank " + std::to_string(rank_) + " stuck at step " + std::to_string(s.step) + " (" +
         s.name + "): not done after " + formatDuration(timeout_) + " (" +
         (lastDone_ < 0 ? std::string("no step done yet")
                        : "last done: step " + std::to_string(lastDone_)) +
         "; a peer rank may have died or be waiting elsewhere)";
}

ProgressWatchdog::ProgressWatchdog(int64_t rank, std::chrono::milliseconds timeout,
                                   std::function<uint32_t()> read,
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

uint32_t ProgressWatchdog::enqueue(int64_t step, std::string name) {
  std::lock_guard<std::mutex> lock(mutex_);
  uint32_t marker = ++nextMarker_;
  detector_.enqueued(marker, step, std::move(name), StallDetector::Clock::now());
  return marker;
}

void ProgressWatchdog::beginRun() {
  std::lock_guard<std::mutex> lock(mutex_);
  nextMarker_ = 0;
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
