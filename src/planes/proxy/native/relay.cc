// tsvs proxy relay: the TCP half of the proxy data plane in native threads.
//
// Division of work (see docs/planes.md):
//   - JavaScript (the director's thread) decides: which real server a new client connection
//     goes to, whether it is refused, when an entry expired. It never touches the bytes.
//   - N worker threads, each with its own epoll, accept on the listening sockets (shared,
//     EPOLLEXCLUSIVE), ask JavaScript for a decision, connect to the real server and relay both
//     ways: recv/send through one buffer per thread for small exchanges, splice(2) through a
//     pipe once a direction streams in bulk. Half-close (shutdown), resets (SO_LINGER 0) and
//     backpressure (edge-triggered readiness, stop reading while the other side is full)
//     happen here.
//   - Events go to JavaScript in batches: a worker appends fixed-size records to one queue and
//     wakes the JS thread through a thread-safe function only when the queue was empty; JS
//     drains everything in one call (drain). Decisions come back the same way (submit), one
//     eventfd write per worker per batch.
//
// Records are arrays of doubles (JS reads them through a Float64Array, no object per event):
//   event   [type|flags, nid, a, b, c, d, e, f]   (layout per type below)
//   command [op, nid, cp, family, port, w0, w1, w2, w3, proxyVersion, arg, 0]
// A connection is named by nid = gen * 2^28 + worker * 2^24 + slot, unique over a long time
// (gen wraps at 2^24), so stale commands for a freed slot are ignored.
//
// Built without C++ exceptions; every syscall is checked. Linux only (epoll, splice, eventfd).

#include <napi.h>
#include <uv.h>

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <atomic>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <unordered_map>
#include <vector>

namespace {

// ---- record layout (shared with src/planes/proxy/tcp-native.ts) ----------------------------
constexpr int REC = 8;    // doubles per event record
constexpr int CREC = 12;  // doubles per command record

// event types (low byte of field 0)
constexpr int EV_ACCEPT = 1;        // [t, nid, listenerId, cport, w0, w1, w2, w3]
constexpr int EV_CONNECTED = 2;     // [t, nid, cp, inB, inSegs, outB, outSegs, 0]
constexpr int EV_CONNECT_FAIL = 3;  // [t, nid, cp, inB, inSegs, outB, outSegs, errno]
constexpr int EV_DATA = 4;          // [t, nid, cp, inB, inSegs, outB, outSegs, 0]
constexpr int EV_FIN_IN = 5;        // client sent FIN
constexpr int EV_FIN_OUT = 6;       // real server sent FIN
constexpr int EV_RST_IN = 7;        // client reset (or failed): server side reset too
constexpr int EV_RST_OUT = 8;       // real server reset (or failed): client side reset too
constexpr int EV_CLOSED = 9;        // both directions done, sockets closed
// flags (bits of field 0 above the type)
constexpr int EVF_CLOSED = 0x100;     // the connection is gone after this record
constexpr int EVF_CONNECTED = 0x200;  // the real server accepted before this record's event

// commands
constexpr int CMD_CONNECT = 1;
constexpr int CMD_REFUSE = 2;
constexpr int CMD_ABORT = 3;
constexpr int CMD_PAUSE_IN = 4;  // arg: 1 pause reading from the client, 0 resume
constexpr int CMD_LISTEN = 5;    // internal: nid field = listener id
constexpr int CMD_UNLISTEN = 6;  // internal

constexpr uint64_t K_EFD = 1, K_LISTEN = 2, K_CLIENT = 3, K_SERVER = 4;
constexpr uint32_t SLOT_BITS = 24;
constexpr uint32_t SLOT_MASK = (1u << SLOT_BITS) - 1;
constexpr uint32_t GEN_MASK = 0xffffff;
constexpr double TWO28 = 268435456.0;
constexpr int MAX_WORKERS = 16;
constexpr size_t CHUNK = 4096;  // conns per allocation chunk (stable addresses)

enum State : uint8_t { FREE = 0, WAIT = 1, CONNECTING = 2, RELAY = 3 };

int64_t NowMs() {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC_COARSE, &ts);
  return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

struct Record {
  double v[REC];
};
struct Command {
  double v[CREC];
};

// One virtual service's listening socket(s): one shared by every worker (EPOLLEXCLUSIVE), or
// one per worker with SO_REUSEPORT (the kernel spreads connections; no shared accept queue).
struct Listener {
  int id = 0;
  int fd = -1;  // fds[0]
  int fds[16] = {-1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1};
  int nfds = 0;
  int family = 4;
  uint8_t addr[16] = {0};
  uint16_t port = 0;
  std::atomic<int> refs{1};
};

void ReleaseListener(Listener* l) {
  if (l->refs.fetch_sub(1) == 1) {
    for (int i = 0; i < l->nfds; i++) close(l->fds[i]);
    delete l;
  }
}

// The socket a worker accepts on.
inline int ListenFd(const Listener* l, int worker) { return l->nfds > 1 ? l->fds[worker % l->nfds] : l->fd; }

// One direction of a relayed connection.
struct Dir {
  char* pend = nullptr;  // bytes read but not yet accepted by the destination
  uint32_t pendOff = 0, pendLen = 0, pendCap = 0;
  int pr = -1, pw = -1;  // pipe (splice mode)
  uint32_t inPipe = 0;
  bool eof = false;     // read 0 from the source
  bool shut = false;    // shutdown(SHUT_WR) sent to the destination
  bool splice = false;  // bulk mode
  uint64_t bytes = 0, segs = 0;  // not yet reported
};

struct Conn {
  uint32_t gen = 0;
  State state = FREE;
  int cfd = -1, sfd = -1;
  bool cRd = false, cWr = false, sRd = false, sWr = false, cHup = false, sHup = false, cErr = false, sErr = false;
  bool paused = false, dirty = false, connUnreported = false;
  double cp = -1;
  int listener = -1;
  int family = 4;
  uint8_t caddr[16];
  uint16_t cport = 0;
  uint8_t proxyVersion = 0;
  Dir up, down;  // up: client -> server, down: server -> client
  uint32_t slot = 0;
  uint32_t nextFree = 0;
};

struct Shared;

class Worker {
 public:
  Worker(Shared* sh, int id, size_t bufSize, bool splice, int pipeSize);
  ~Worker();
  bool Init(int* err);
  void Start() { thread_ = std::thread([this] { Run(); }); }
  void Stop();
  void Post(const Command* cmds, size_t n);
  void Wake();

  std::atomic<uint64_t> accepted{0}, connected{0}, connectFailed{0}, closed{0}, resets{0}, live{0};
  std::atomic<uint64_t> bytesIn{0}, bytesOut{0}, spliced{0};

 private:
  void Run();
  void Dispatch(const epoll_event& ev);
  void DrainCommands();
  void Exec(const Command& c);
  void Accept(int id);
  Conn* Alloc(uint32_t* slot);
  Conn* Get(uint32_t slot) { return slot < nconns_ ? &chunks_[slot / CHUNK][slot % CHUNK] : nullptr; }
  Conn* Find(double nid);
  double Nid(const Conn* c, uint32_t slot) const {
    return (double)(c->gen & GEN_MASK) * TWO28 + (double)(((uint32_t)id_ << SLOT_BITS) | slot);
  }
  uint32_t SlotOf(const Conn* c) const { return c->slot; }
  void FreeConn(Conn* c);
  void Connect(Conn* c, const Command& cmd);
  void OnIo(Conn* c, bool server, uint32_t events);
  void OnConnected(Conn* c);
  bool Pump(Conn* c);
  bool PumpDir(Conn* c, bool up);
  bool SendOrPend(Conn* c, Dir& d, int dst, bool& dstWr, const char* buf, size_t len, int more = 0);
  void StartSplice(Dir& d);
  void Emit(Conn* c, int type, int flags, double extra = 0);
  void EmitFin(Conn* c, bool up) { Emit(c, up ? EV_FIN_IN : EV_FIN_OUT, 0); }
  void Count(Conn* c, Dir& d, size_t n);
  void Reset(Conn* c, bool serverSide, int err);
  void ConnectFailed(Conn* c, int err);
  void Finish(Conn* c);
  void Abort(Conn* c);
  void ReportDirty();
  void Flush();
  void ReleasePipe(Dir& d);
  void AddListener(int id);
  void RemoveListener(int id);
  void CloseAll();

  Shared* sh_;
  int id_;
  int ep_ = -1;
  int efd_ = -1;
  int reserveFd_ = -1;
  std::thread thread_;
  std::atomic<bool> stop_{false};
  std::atomic<bool> wakePending_{false};
  std::mutex cmu_;
  std::vector<Command> cq_;
  std::vector<Command> work_;
  std::vector<Record> out_;
  std::vector<std::unique_ptr<Conn[]>> chunks_;
  uint32_t nconns_ = 0;
  uint32_t freeHead_ = UINT32_MAX;
  std::vector<uint32_t> dirty_;
  std::vector<std::pair<int, int>> pipes_;
  std::unordered_map<int, Listener*> lmap_;
  std::unique_ptr<char[]> buf_;
  size_t bufSize_;
  bool spliceOn_;
  int pipeSize_;
  int64_t now_ = 0;
  int64_t nextTick_ = 0;
  int64_t lazySince_ = -1;  // records queued without a wake-up since then
  bool urgent_ = false;     // out_ holds a record JavaScript must answer
  void PushOut();
};

struct Shared {
  std::mutex qmu;
  std::vector<Record> q;
  size_t qhead = 0;
  bool signaled = false;
  Napi::ThreadSafeFunction tsfn;
  std::mutex lmu;
  std::unordered_map<int, Listener*> listeners;
  std::vector<std::unique_ptr<Worker>> workers;

  // Queue records for JavaScript. Only urgent ones (a client waiting for its decision) wake
  // it at once; the others (FIN, reset, bytes) ride with the next wake-up, or the worker kicks
  // after LAZY_MS. Returns true when records were left waiting without a wake-up.
  bool Push(std::vector<Record>& recs, bool urgent) {
    if (recs.empty()) return false;
    bool wake = false, lazy = false;
    {
      std::lock_guard<std::mutex> g(qmu);
      q.insert(q.end(), recs.begin(), recs.end());
      if (!signaled) {
        if (urgent) {
          signaled = true;
          wake = true;
        } else {
          lazy = true;
        }
      }
    }
    recs.clear();
    if (wake) tsfn.NonBlockingCall();
    return lazy;
  }

  // Wake JavaScript if records wait and nobody did.
  void Kick() {
    bool wake = false;
    {
      std::lock_guard<std::mutex> g(qmu);
      if (!signaled && qhead < q.size()) {
        signaled = true;
        wake = true;
      }
    }
    if (wake) tsfn.NonBlockingCall();
  }
};

// How long state records (FIN, reset, bytes) may wait for a wake-up caused by something urgent.
constexpr int64_t LAZY_MS = 5;

void Worker::PushOut() {
  bool lazy = sh_->Push(out_, urgent_);
  if (urgent_)
    lazySince_ = -1;
  else if (lazy && lazySince_ < 0)
    lazySince_ = now_;
  urgent_ = false;
}

// ---- worker -------------------------------------------------------------------------------

Worker::Worker(Shared* sh, int id, size_t bufSize, bool splice, int pipeSize)
    : sh_(sh), id_(id), bufSize_(bufSize), spliceOn_(splice), pipeSize_(pipeSize) {
  buf_.reset(new char[bufSize_]);
}

Worker::~Worker() {
  CloseAll();
  if (ep_ >= 0) close(ep_);
  if (efd_ >= 0) close(efd_);
  if (reserveFd_ >= 0) close(reserveFd_);
  for (auto& p : pipes_) {
    close(p.first);
    close(p.second);
  }
}

bool Worker::Init(int* err) {
  ep_ = epoll_create1(EPOLL_CLOEXEC);
  if (ep_ < 0) {
    *err = errno;
    return false;
  }
  efd_ = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
  if (efd_ < 0) {
    *err = errno;
    return false;
  }
  epoll_event ev{};
  ev.events = EPOLLIN;
  ev.data.u64 = K_EFD << 60;
  if (epoll_ctl(ep_, EPOLL_CTL_ADD, efd_, &ev) < 0) {
    *err = errno;
    return false;
  }
  reserveFd_ = open("/dev/null", O_RDONLY | O_CLOEXEC);
  return true;
}

void Worker::Stop() {
  if (!thread_.joinable()) return;
  stop_.store(true);
  uint64_t one = 1;
  ssize_t r = write(efd_, &one, 8);
  (void)r;
  thread_.join();
}

void Worker::Post(const Command* cmds, size_t n) {
  {
    std::lock_guard<std::mutex> g(cmu_);
    cq_.insert(cq_.end(), cmds, cmds + n);
  }
  Wake();
}

void Worker::Wake() {
  if (!wakePending_.exchange(true)) {
    uint64_t one = 1;
    ssize_t r = write(efd_, &one, 8);
    (void)r;
  }
}

void Worker::Run() {
  char name[16];
  snprintf(name, sizeof name, "tsvs-relay-%d", id_);
  pthread_setname_np(pthread_self(), name);
  constexpr int MAXEV = 256;
  epoll_event evs[MAXEV];
  now_ = NowMs();
  nextTick_ = now_ + 1000;
  while (!stop_.load(std::memory_order_relaxed)) {
    int timeout = -1;
    if (!dirty_.empty() || lazySince_ >= 0) {
      int64_t due = nextTick_;
      if (lazySince_ >= 0 && lazySince_ + LAZY_MS < due) due = lazySince_ + LAZY_MS;
      if (dirty_.empty() && lazySince_ >= 0) due = lazySince_ + LAZY_MS;
      int64_t t = due - NowMs();
      timeout = t < 0 ? 0 : (int)t;
    }
    int n = epoll_wait(ep_, evs, MAXEV, timeout);
    if (n < 0) {
      if (errno == EINTR) continue;
      break;
    }
    now_ = NowMs();
    for (int i = 0; i < n; i++) Dispatch(evs[i]);
    if (now_ >= nextTick_) {
      ReportDirty();
      nextTick_ = now_ + 1000;
    }
    PushOut();
    if (lazySince_ >= 0 && now_ - lazySince_ >= LAZY_MS) {
      sh_->Kick();
      lazySince_ = -1;
    }
  }
}

void Worker::Dispatch(const epoll_event& ev) {
  uint64_t d = ev.data.u64;
  uint64_t kind = d >> 60;
  if (kind == K_EFD) {
    DrainCommands();
    return;
  }
  if (kind == K_LISTEN) {
    Accept((int)(d & 0xffffffff));
    PushOut();  // decisions are latency-bound: do not wait for the rest of the batch
    return;
  }
  uint32_t slot = (uint32_t)(d & 0xffffffff);
  uint32_t gen = (uint32_t)((d >> 32) & GEN_MASK);
  Conn* c = Get(slot);
  if (!c || c->state == FREE || (c->gen & GEN_MASK) != gen) return;
  OnIo(c, kind == K_SERVER, ev.events);
}

void Worker::DrainCommands() {
  uint64_t v;
  ssize_t r = read(efd_, &v, 8);
  (void)r;
  wakePending_.store(false);
  {
    std::lock_guard<std::mutex> g(cmu_);
    work_.swap(cq_);
  }
  for (const Command& c : work_) Exec(c);
  work_.clear();
}

Conn* Worker::Find(double nid) {
  uint64_t n = (uint64_t)nid;
  uint32_t slot = (uint32_t)(n & SLOT_MASK);
  uint32_t gen = (uint32_t)(n >> 28) & GEN_MASK;
  Conn* c = Get(slot);
  if (!c || c->state == FREE || (c->gen & GEN_MASK) != gen) return nullptr;
  return c;
}

void Worker::Exec(const Command& cmd) {
  int op = (int)cmd.v[0];
  if (op == CMD_LISTEN) {
    AddListener((int)cmd.v[1]);
    return;
  }
  if (op == CMD_UNLISTEN) {
    RemoveListener((int)cmd.v[1]);
    return;
  }
  Conn* c = Find(cmd.v[1]);
  if (!c) return;
  switch (op) {
    case CMD_CONNECT:
      if (c->state == WAIT) Connect(c, cmd);
      break;
    case CMD_REFUSE:
      if (c->state == WAIT) Abort(c);
      break;
    case CMD_ABORT:
      Abort(c);
      break;
    case CMD_PAUSE_IN: {
      bool was = c->paused;
      c->paused = cmd.v[10] != 0;
      if (was && !c->paused && c->state == RELAY) Pump(c);
      break;
    }
  }
}

void Worker::AddListener(int id) {
  Listener* l = nullptr;
  {
    std::lock_guard<std::mutex> g(sh_->lmu);
    auto it = sh_->listeners.find(id);
    if (it == sh_->listeners.end()) return;
    l = it->second;
    l->refs.fetch_add(1);
  }
  epoll_event ev{};
  ev.events = l->nfds > 1 ? EPOLLIN : EPOLLIN | EPOLLEXCLUSIVE;
  ev.data.u64 = (K_LISTEN << 60) | (uint32_t)id;
  if (epoll_ctl(ep_, EPOLL_CTL_ADD, ListenFd(l, id_), &ev) < 0) {
    ReleaseListener(l);
    return;
  }
  lmap_[id] = l;
}

void Worker::RemoveListener(int id) {
  auto it = lmap_.find(id);
  if (it == lmap_.end()) return;
  Listener* l = it->second;
  lmap_.erase(it);
  epoll_ctl(ep_, EPOLL_CTL_DEL, ListenFd(l, id_), nullptr);
  ReleaseListener(l);
}

Conn* Worker::Alloc(uint32_t* slot) {
  uint32_t s;
  if (freeHead_ != UINT32_MAX) {
    s = freeHead_;
    freeHead_ = Get(s)->nextFree;
  } else {
    if (nconns_ >= SLOT_MASK) return nullptr;
    if (nconns_ % CHUNK == 0) chunks_.emplace_back(new Conn[CHUNK]);
    s = nconns_++;
  }
  Conn* c = Get(s);
  uint32_t gen = c->gen;
  *c = Conn();
  c->gen = gen;
  c->slot = s;
  *slot = s;
  return c;
}

void Worker::ReleasePipe(Dir& d) {
  if (d.pr < 0) return;
  if (d.inPipe == 0 && pipes_.size() < 16) {
    pipes_.emplace_back(d.pr, d.pw);
  } else {
    close(d.pr);
    close(d.pw);
  }
  d.pr = d.pw = -1;
}

void Worker::FreeConn(Conn* c) {
  uint32_t slot = SlotOf(c);
  if (c->cfd >= 0) close(c->cfd);
  if (c->sfd >= 0) close(c->sfd);
  ReleasePipe(c->up);
  ReleasePipe(c->down);
  free(c->up.pend);
  free(c->down.pend);
  uint32_t gen = c->gen + 1;
  *c = Conn();
  c->gen = gen;
  c->slot = slot;
  c->nextFree = freeHead_;
  freeHead_ = slot;
  live.fetch_sub(1, std::memory_order_relaxed);
}

void Worker::Emit(Conn* c, int type, int flags, double extra) {
  if (c->connUnreported) {
    flags |= EVF_CONNECTED;
    c->connUnreported = false;
  }
  Record r;
  r.v[0] = type | flags;
  r.v[1] = Nid(c, SlotOf(c));
  r.v[2] = c->cp;
  r.v[3] = (double)c->up.bytes;
  r.v[4] = (double)c->up.segs;
  r.v[5] = (double)c->down.bytes;
  r.v[6] = (double)c->down.segs;
  r.v[7] = extra;
  c->up.bytes = c->up.segs = c->down.bytes = c->down.segs = 0;
  out_.push_back(r);
}

void Worker::Count(Conn* c, Dir& d, size_t n) {
  d.bytes += n;
  d.segs++;
  if (&d == &c->up)
    bytesIn.fetch_add(n, std::memory_order_relaxed);
  else
    bytesOut.fetch_add(n, std::memory_order_relaxed);
  if (!c->dirty) {
    c->dirty = true;
    if (dirty_.empty()) nextTick_ = now_ + 1000;
    dirty_.push_back(SlotOf(c));
  }
}

void Worker::ReportDirty() {
  std::vector<uint32_t> list;
  list.swap(dirty_);
  for (uint32_t s : list) {
    Conn* c = Get(s);
    if (!c || c->state == FREE || !c->dirty) continue;
    c->dirty = false;
    if (c->up.bytes || c->down.bytes || c->connUnreported) Emit(c, EV_DATA, 0);
  }
}

void Worker::Accept(int id) {
  auto it = lmap_.find(id);
  if (it == lmap_.end()) return;
  Listener* l = it->second;
  for (int k = 0; k < 64; k++) {
    sockaddr_storage ss;
    socklen_t sl = sizeof ss;
    int fd = accept4(ListenFd(l, id_), (sockaddr*)&ss, &sl, SOCK_NONBLOCK | SOCK_CLOEXEC);
    if (fd < 0) {
      if (errno == EINTR || errno == ECONNABORTED) continue;
      if (errno == EINVAL) {
        // shut down by unlisten() from the JS thread: stop watching it now
        RemoveListener(id);
        return;
      }
      if ((errno == EMFILE || errno == ENFILE) && reserveFd_ >= 0) {
        // Out of descriptors: accept and drop one so the listener does not spin.
        close(reserveFd_);
        int x = accept4(ListenFd(l, id_), nullptr, nullptr, SOCK_CLOEXEC);
        if (x >= 0) close(x);
        reserveFd_ = open("/dev/null", O_RDONLY | O_CLOEXEC);
      }
      break;
    }
    uint32_t slot;
    Conn* c = Alloc(&slot);
    if (!c) {
      close(fd);
      break;
    }
    accepted.fetch_add(1, std::memory_order_relaxed);
    live.fetch_add(1, std::memory_order_relaxed);
    c->state = WAIT;
    c->cfd = fd;
    c->listener = id;
    Record r;
    r.v[0] = EV_ACCEPT;
    r.v[1] = Nid(c, slot);
    r.v[2] = id;
    if (ss.ss_family == AF_INET6) {
      const sockaddr_in6* a = (const sockaddr_in6*)&ss;
      c->family = 6;
      memcpy(c->caddr, &a->sin6_addr, 16);
      c->cport = ntohs(a->sin6_port);
      uint32_t w[4];
      memcpy(w, &a->sin6_addr, 16);
      for (int i = 0; i < 4; i++) r.v[4 + i] = ntohl(w[i]);
    } else {
      const sockaddr_in* a = (const sockaddr_in*)&ss;
      c->family = 4;
      memset(c->caddr, 0, 16);
      memcpy(c->caddr, &a->sin_addr, 4);
      c->cport = ntohs(a->sin_port);
      r.v[4] = ntohl(a->sin_addr.s_addr);
      r.v[5] = r.v[6] = r.v[7] = 0;
    }
    r.v[3] = c->cport;
    out_.push_back(r);
    urgent_ = true;
  }
}

void Worker::Connect(Conn* c, const Command& cmd) {
  c->cp = cmd.v[2];
  c->proxyVersion = (uint8_t)cmd.v[9];
  int family = (int)cmd.v[3];
  uint16_t port = (uint16_t)cmd.v[4];
  sockaddr_storage ss{};
  socklen_t sl;
  if (family == 6) {
    sockaddr_in6* a = (sockaddr_in6*)&ss;
    a->sin6_family = AF_INET6;
    a->sin6_port = htons(port);
    uint32_t w[4];
    for (int i = 0; i < 4; i++) w[i] = htonl((uint32_t)cmd.v[5 + i]);
    memcpy(&a->sin6_addr, w, 16);
    sl = sizeof(sockaddr_in6);
  } else {
    sockaddr_in* a = (sockaddr_in*)&ss;
    a->sin_family = AF_INET;
    a->sin_port = htons(port);
    a->sin_addr.s_addr = htonl((uint32_t)cmd.v[5]);
    sl = sizeof(sockaddr_in);
  }
  int fd = socket(family == 6 ? AF_INET6 : AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) {
    ConnectFailed(c, errno);
    return;
  }
  int one = 1;
  setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  c->sfd = fd;
  if (connect(fd, (sockaddr*)&ss, sl) < 0 && errno != EINPROGRESS) {
    ConnectFailed(c, errno);
    return;
  }
  uint32_t slot = SlotOf(c);
  uint64_t tag = ((uint64_t)(c->gen & GEN_MASK) << 32) | slot;
  epoll_event ev{};
  ev.events = EPOLLIN | EPOLLOUT | EPOLLRDHUP | EPOLLET;
  ev.data.u64 = (K_SERVER << 60) | tag;
  if (epoll_ctl(ep_, EPOLL_CTL_ADD, fd, &ev) < 0) {
    ConnectFailed(c, errno);
    return;
  }
  ev.data.u64 = (K_CLIENT << 60) | tag;
  if (epoll_ctl(ep_, EPOLL_CTL_ADD, c->cfd, &ev) < 0) {
    ConnectFailed(c, errno);
    return;
  }
  c->state = CONNECTING;
}

void Worker::OnIo(Conn* c, bool server, uint32_t events) {
  bool hup = (events & (EPOLLHUP | EPOLLRDHUP)) != 0;
  bool err = (events & EPOLLERR) != 0;
  if (server) {
    if (events & (EPOLLIN | EPOLLERR | EPOLLHUP | EPOLLRDHUP)) c->sRd = true;
    if (events & (EPOLLOUT | EPOLLERR | EPOLLHUP)) c->sWr = true;
    if (hup) c->sHup = true;
    if (err) c->sErr = true;
  } else {
    if (events & (EPOLLIN | EPOLLERR | EPOLLHUP | EPOLLRDHUP)) c->cRd = true;
    if (events & (EPOLLOUT | EPOLLERR | EPOLLHUP)) c->cWr = true;
    if (hup) c->cHup = true;
    if (err) c->cErr = true;
  }
  if (c->state == CONNECTING) {
    if (!server) return;
    if (events & (EPOLLERR | EPOLLHUP)) {
      int e = 0;
      socklen_t el = sizeof e;
      getsockopt(c->sfd, SOL_SOCKET, SO_ERROR, &e, &el);
      ConnectFailed(c, e ? e : ECONNREFUSED);
      return;
    }
    if (!(events & EPOLLOUT)) return;
    OnConnected(c);
    return;
  }
  if (c->state != RELAY) return;
  if (!Pump(c)) return;
  if (events & EPOLLERR) {
    int e = 0;
    socklen_t el = sizeof e;
    getsockopt(server ? c->sfd : c->cfd, SOL_SOCKET, SO_ERROR, &e, &el);
    if (e) Reset(c, server, e);
  }
}

void Worker::OnConnected(Conn* c) {
  c->state = RELAY;
  c->connUnreported = true;
  connected.fetch_add(1, std::memory_order_relaxed);
  if (!c->dirty) {
    c->dirty = true;
    if (dirty_.empty()) nextTick_ = now_ + 1000;
    dirty_.push_back(SlotOf(c));
  }
  if (c->proxyVersion) {
    // PROXY protocol header, sent together with the client's first bytes when they are
    // already queued (one segment, as most clients speak first).
    char* b = buf_.get();
    size_t h = 0;
    Listener* l = nullptr;
    auto it = lmap_.find(c->listener);
    if (it != lmap_.end()) l = it->second;
    uint8_t vaddr[16] = {0};
    uint16_t vport = 0;
    if (l) {
      memcpy(vaddr, l->addr, 16);
      vport = l->port;
    } else {
      sockaddr_storage ss;
      socklen_t sl = sizeof ss;
      if (getsockname(c->cfd, (sockaddr*)&ss, &sl) == 0) {
        if (ss.ss_family == AF_INET6) {
          memcpy(vaddr, &((sockaddr_in6*)&ss)->sin6_addr, 16);
          vport = ntohs(((sockaddr_in6*)&ss)->sin6_port);
        } else {
          memcpy(vaddr, &((sockaddr_in*)&ss)->sin_addr, 4);
          vport = ntohs(((sockaddr_in*)&ss)->sin_port);
        }
      }
    }
    bool v6 = c->family == 6;
    if (c->proxyVersion == 1) {
      char s[INET6_ADDRSTRLEN], d[INET6_ADDRSTRLEN];
      inet_ntop(v6 ? AF_INET6 : AF_INET, c->caddr, s, sizeof s);
      inet_ntop(v6 ? AF_INET6 : AF_INET, vaddr, d, sizeof d);
      int n = snprintf(b, 108, "PROXY %s %s %s %u %u\r\n", v6 ? "TCP6" : "TCP4", s, d, (unsigned)c->cport, (unsigned)vport);
      h = n > 0 ? (size_t)n : 0;
    } else {
      static const uint8_t sig[12] = {0x0D, 0x0A, 0x0D, 0x0A, 0x00, 0x0D, 0x0A, 0x51, 0x55, 0x49, 0x54, 0x0A};
      memcpy(b, sig, 12);
      b[12] = 0x21;
      b[13] = v6 ? 0x21 : 0x11;
      uint16_t len = v6 ? 36 : 12;
      b[14] = (char)(len >> 8);
      b[15] = (char)(len & 0xff);
      size_t al = v6 ? 16 : 4;
      memcpy(b + 16, c->caddr, al);
      memcpy(b + 16 + al, vaddr, al);
      size_t p = 16 + 2 * al;
      b[p] = (char)(c->cport >> 8);
      b[p + 1] = (char)(c->cport & 0xff);
      b[p + 2] = (char)(vport >> 8);
      b[p + 3] = (char)(vport & 0xff);
      h = p + 4;
    }
    size_t total = h;
    if (!c->paused) {
      ssize_t n = recv(c->cfd, b + h, bufSize_ - h, 0);
      if (n > 0) {
        Count(c, c->up, (size_t)n);
        total += (size_t)n;
        if ((size_t)n < bufSize_ - h && !c->cHup) c->cRd = false;
      } else if (n == 0) {
        c->up.eof = true;
        if (!SendOrPend(c, c->up, c->sfd, c->sWr, b, total)) {
          Reset(c, true, errno);
          return;
        }
        EmitFin(c, true);
        Pump(c);
        return;
      } else if (errno == EAGAIN || errno == EWOULDBLOCK) {
        c->cRd = false;
      } else {
        Reset(c, false, errno);
        return;
      }
    }
    if (!SendOrPend(c, c->up, c->sfd, c->sWr, b, total)) {
      Reset(c, true, errno);
      return;
    }
  }
  Pump(c);
}

bool Worker::SendOrPend(Conn* c, Dir& d, int dst, bool& dstWr, const char* buf, size_t len, int more) {
  (void)c;
  size_t m = 0;
  if (dstWr && d.pendLen == 0) {
    for (;;) {
      ssize_t r = send(dst, buf, len, MSG_NOSIGNAL | MSG_DONTWAIT | more);
      if (r >= 0) {
        m = (size_t)r;
        break;
      }
      if (errno == EINTR) continue;
      if (errno == EAGAIN || errno == EWOULDBLOCK) break;
      return false;
    }
  }
  if (m < len) {
    size_t rest = len - m;
    size_t need = d.pendOff + d.pendLen + rest;
    if (need > d.pendCap) {
      // compact, then grow
      if (d.pendOff) {
        memmove(d.pend, d.pend + d.pendOff, d.pendLen);
        d.pendOff = 0;
        need = d.pendLen + rest;
      }
      if (need > d.pendCap) {
        size_t cap = d.pendCap ? d.pendCap : 4096;
        while (cap < need) cap *= 2;
        char* p = (char*)realloc(d.pend, cap);
        if (!p) {
          errno = ENOMEM;
          return false;
        }
        d.pend = p;
        d.pendCap = (uint32_t)cap;
      }
    }
    memcpy(d.pend + d.pendOff + d.pendLen, buf + m, rest);
    d.pendLen += (uint32_t)rest;
    dstWr = false;
  }
  return true;
}

void Worker::StartSplice(Dir& d) {
  if (pipes_.empty()) {
    int p[2];
    if (pipe2(p, O_NONBLOCK | O_CLOEXEC) < 0) return;
    if (pipeSize_ > 0) fcntl(p[1], F_SETPIPE_SZ, pipeSize_);
    // Past the per-user pipe quota (fs.pipe-user-pages-soft) new pipes are tiny: splicing
    // through them would be slower than copying, so stay with the buffer then.
    if (fcntl(p[1], F_GETPIPE_SZ) < 65536) {
      close(p[0]);
      close(p[1]);
      return;
    }
    pipes_.emplace_back(p[0], p[1]);
  }
  d.pr = pipes_.back().first;
  d.pw = pipes_.back().second;
  pipes_.pop_back();
  d.splice = true;
}

bool Worker::Pump(Conn* c) {
  if (!PumpDir(c, true)) return false;
  if (!PumpDir(c, false)) return false;
  if (c->up.shut && c->down.shut && c->up.pendLen == 0 && c->down.pendLen == 0 && c->up.inPipe == 0 && c->down.inPipe == 0) {
    Finish(c);
    return false;
  }
  return true;
}

// Move bytes one way until the source has nothing more or the destination is full.
// Returns false when the connection was torn down.
bool Worker::PumpDir(Conn* c, bool up) {
  Dir& d = up ? c->up : c->down;
  int src = up ? c->cfd : c->sfd;
  int dst = up ? c->sfd : c->cfd;
  bool& srcRd = up ? c->cRd : c->sRd;
  bool& dstWr = up ? c->sWr : c->cWr;
  for (;;) {
    if (d.pendLen) {
      if (!dstWr) return true;
      ssize_t m = send(dst, d.pend + d.pendOff, d.pendLen, MSG_NOSIGNAL | MSG_DONTWAIT);
      if (m < 0) {
        if (errno == EINTR) continue;
        if (errno == EAGAIN || errno == EWOULDBLOCK) {
          dstWr = false;
          return true;
        }
        Reset(c, up, errno);
        return false;
      }
      d.pendOff += (uint32_t)m;
      d.pendLen -= (uint32_t)m;
      if (d.pendLen) {
        dstWr = false;
        return true;
      }
      d.pendOff = 0;
      continue;
    }
    if (d.inPipe) {
      if (!dstWr) return true;
      ssize_t m = splice(d.pr, nullptr, dst, nullptr, d.inPipe, SPLICE_F_MOVE | SPLICE_F_NONBLOCK);
      if (m < 0) {
        if (errno == EINTR) continue;
        if (errno == EAGAIN || errno == EWOULDBLOCK) {
          dstWr = false;
          return true;
        }
        Reset(c, up, errno);
        return false;
      }
      d.inPipe -= (uint32_t)m;
      spliced.fetch_add((uint64_t)m, std::memory_order_relaxed);
      continue;
    }
    if (d.eof) {
      if (!d.shut) {
        // When the other way is already finished the connection closes right after this,
        // and close() sends the FIN: no shutdown() needed.
        const Dir& o = up ? c->down : c->up;
        if (!(o.shut && o.pendLen == 0 && o.inPipe == 0)) shutdown(dst, SHUT_WR);
        d.shut = true;
      }
      return true;
    }
    if (up && c->paused) return true;
    if (!srcRd) return true;
    if (d.splice) {
      ssize_t n = splice(src, nullptr, d.pw, nullptr, 1 << 20, SPLICE_F_MOVE | SPLICE_F_NONBLOCK);
      if (n > 0) {
        d.inPipe = (uint32_t)n;
        Count(c, d, (size_t)n);
        continue;
      }
      if (n == 0) {
        d.eof = true;
        EmitFin(c, up);
        continue;
      }
      if (errno == EINTR) continue;
      if (errno == EAGAIN || errno == EWOULDBLOCK) {
        srcRd = false;
        return true;
      }
      Reset(c, !up, errno);
      return false;
    }
    bool srcHup = up ? c->cHup : c->sHup;
    bool srcErr = up ? c->cErr : c->sErr;
    ssize_t n = recv(src, buf_.get(), bufSize_, 0);
    if (n > 0) {
      Count(c, d, (size_t)n);
      // A short read drained the socket (TCP returns all it has queued). If the peer's FIN
      // had already arrived when we read (RDHUP seen before, no error), nothing can follow:
      // this is the end of the stream, without another recv() to learn it. The data then
      // goes out with MSG_MORE so that the FIN sent right after rides in the same segment.
      bool shortRead = (size_t)n < bufSize_;
      bool last = shortRead && srcHup && !srcErr;
      if (!SendOrPend(c, d, dst, dstWr, buf_.get(), (size_t)n, last ? MSG_MORE : 0)) {
        Reset(c, up, errno);
        return false;
      }
      if (last) {
        d.eof = true;
        EmitFin(c, up);
        continue;
      }
      if (shortRead) {
        srcRd = false;
      } else if (spliceOn_) {
        StartSplice(d);
      }
      continue;
    }
    if (n == 0) {
      d.eof = true;
      EmitFin(c, up);
      continue;
    }
    if (errno == EINTR) continue;
    if (errno == EAGAIN || errno == EWOULDBLOCK) {
      srcRd = false;
      return true;
    }
    Reset(c, !up, errno);
    return false;
  }
}

// One side failed or reset: reset the other side (SO_LINGER 0) and forget the connection.
void Worker::Reset(Conn* c, bool serverSide, int err) {
  (void)err;
  resets.fetch_add(1, std::memory_order_relaxed);
  Emit(c, serverSide ? EV_RST_OUT : EV_RST_IN, EVF_CLOSED);
  linger lg{1, 0};
  int other = serverSide ? c->cfd : c->sfd;
  if (other >= 0) setsockopt(other, SOL_SOCKET, SO_LINGER, &lg, sizeof lg);
  closed.fetch_add(1, std::memory_order_relaxed);
  FreeConn(c);
}

void Worker::ConnectFailed(Conn* c, int err) {
  connectFailed.fetch_add(1, std::memory_order_relaxed);
  Emit(c, EV_CONNECT_FAIL, EVF_CLOSED, err);
  urgent_ = true;
  linger lg{1, 0};
  setsockopt(c->cfd, SOL_SOCKET, SO_LINGER, &lg, sizeof lg);
  closed.fetch_add(1, std::memory_order_relaxed);
  FreeConn(c);
}

void Worker::Finish(Conn* c) {
  double nid = Nid(c, SlotOf(c));
  if (!c->connUnreported && !out_.empty() && out_.back().v[1] == nid && c->up.bytes == 0 && c->down.bytes == 0) {
    out_.back().v[0] = (double)((int)out_.back().v[0] | EVF_CLOSED);
  } else {
    Emit(c, EV_CLOSED, EVF_CLOSED);
  }
  closed.fetch_add(1, std::memory_order_relaxed);
  FreeConn(c);
}

void Worker::Abort(Conn* c) {
  linger lg{1, 0};
  if (c->cfd >= 0) setsockopt(c->cfd, SOL_SOCKET, SO_LINGER, &lg, sizeof lg);
  if (c->sfd >= 0) setsockopt(c->sfd, SOL_SOCKET, SO_LINGER, &lg, sizeof lg);
  closed.fetch_add(1, std::memory_order_relaxed);
  FreeConn(c);
}

void Worker::CloseAll() {
  for (uint32_t s = 0; s < nconns_; s++) {
    Conn* c = Get(s);
    if (c->state != FREE) Abort(c);
  }
  for (auto& kv : lmap_) {
    if (ep_ >= 0) epoll_ctl(ep_, EPOLL_CTL_DEL, ListenFd(kv.second, id_), nullptr);
    ReleaseListener(kv.second);
  }
  lmap_.clear();
}

// ---- the JS object ------------------------------------------------------------------------

Napi::Value ThrowErr(Napi::Env env, const std::string& msg) {
  Napi::Error::New(env, msg).ThrowAsJavaScriptException();
  return env.Undefined();
}

class Relay : public Napi::ObjectWrap<Relay> {
 public:
  static Napi::Function Define(Napi::Env env) {
    return DefineClass(env, "Relay",
                       {
                           InstanceMethod("listen", &Relay::Listen),
                           InstanceMethod("unlisten", &Relay::Unlisten),
                           InstanceMethod("drain", &Relay::Drain),
                           InstanceMethod("submit", &Relay::Submit),
                           InstanceMethod("stats", &Relay::Stats),
                           InstanceMethod("close", &Relay::Close),
                       });
  }

  // new Relay({ threads, bufSize, splice, pipeSize }, onEvents)
  explicit Relay(const Napi::CallbackInfo& info) : Napi::ObjectWrap<Relay>(info) {
    Napi::Env env = info.Env();
    if (info.Length() < 2 || !info[0].IsObject() || !info[1].IsFunction()) {
      ThrowErr(env, "new Relay(options, onEvents)");
      return;
    }
    Napi::Object o = info[0].As<Napi::Object>();
    auto num = [&](const char* k, double def) {
      Napi::Value v = o.Get(k);
      return v.IsNumber() ? v.As<Napi::Number>().DoubleValue() : def;
    };
    int threads = (int)num("threads", 1);
    if (threads < 1) threads = 1;
    if (threads > MAX_WORKERS) threads = MAX_WORKERS;
    size_t bufSize = (size_t)num("bufSize", 65536);
    if (bufSize < 4096) bufSize = 4096;
    Napi::Value sp = o.Get("splice");
    bool splice = sp.IsBoolean() ? sp.As<Napi::Boolean>().Value() : true;
    int pipeSize = (int)num("pipeSize", 262144);
    Napi::Value rp = o.Get("reusePort");
    reusePort_ = rp.IsBoolean() ? rp.As<Napi::Boolean>().Value() : threads > 1;
    sh_.reset(new Shared());
    sh_->tsfn = Napi::ThreadSafeFunction::New(env, info[1].As<Napi::Function>(), "tsvs-proxy-relay", 0, 1);
    for (int i = 0; i < threads; i++) {
      sh_->workers.emplace_back(new Worker(sh_.get(), i, bufSize, splice, pipeSize));
      int err = 0;
      if (!sh_->workers.back()->Init(&err)) {
        sh_->workers.clear();
        sh_->tsfn.Release();
        sh_.reset();
        ThrowErr(env, std::string("relay worker init failed: ") + strerror(err));
        return;
      }
    }
    for (auto& w : sh_->workers) w->Start();
  }

  ~Relay() override { Shutdown(); }

 private:
  void Shutdown() {
    if (!sh_ || closed_) return;
    closed_ = true;
    for (auto& w : sh_->workers) w->Stop();
    sh_->workers.clear();
    {
      std::lock_guard<std::mutex> g(sh_->lmu);
      for (auto& kv : sh_->listeners) ReleaseListener(kv.second);
      sh_->listeners.clear();
    }
    sh_->tsfn.Release();
  }

  // listen(id, family, w0, w1, w2, w3, port, backlog) -> 0 or -errno
  Napi::Value Listen(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    if (!sh_ || closed_) return ThrowErr(env, "relay closed");
    int id = info[0].As<Napi::Number>().Int32Value();
    int family = info[1].As<Napi::Number>().Int32Value();
    uint32_t w[4];
    for (int i = 0; i < 4; i++) w[i] = info[2 + i].As<Napi::Number>().Uint32Value();
    int port = info[6].As<Napi::Number>().Int32Value();
    int backlog = info[7].As<Napi::Number>().Int32Value();
    std::unique_ptr<Listener> l(new Listener());
    l->id = id;
    l->family = family;
    l->port = (uint16_t)port;
    sockaddr_storage ss{};
    socklen_t sl;
    if (family == 6) {
      sockaddr_in6* a = (sockaddr_in6*)&ss;
      a->sin6_family = AF_INET6;
      a->sin6_port = htons((uint16_t)port);
      uint32_t n[4];
      for (int i = 0; i < 4; i++) n[i] = htonl(w[i]);
      memcpy(&a->sin6_addr, n, 16);
      memcpy(l->addr, n, 16);
      sl = sizeof(sockaddr_in6);
    } else {
      sockaddr_in* a = (sockaddr_in*)&ss;
      a->sin_family = AF_INET;
      a->sin_port = htons((uint16_t)port);
      a->sin_addr.s_addr = htonl(w[0]);
      memcpy(l->addr, &a->sin_addr, 4);
      sl = sizeof(sockaddr_in);
    }
    int n = reusePort_ ? (int)sh_->workers.size() : 1;
    for (int i = 0; i < n; i++) {
      int fd = socket(family == 6 ? AF_INET6 : AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
      if (fd < 0) {
        int e = errno;
        for (int k = 0; k < l->nfds; k++) close(l->fds[k]);
        return Napi::Number::New(env, -e);
      }
      int one = 1;
      setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
      if (n > 1) setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof one);
      setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
      if (family == 6) setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof one);
      if (bind(fd, (sockaddr*)&ss, sl) < 0 || listen(fd, backlog) < 0) {
        int e = errno;
        close(fd);
        for (int k = 0; k < l->nfds; k++) close(l->fds[k]);
        return Napi::Number::New(env, -e);
      }
      l->fds[l->nfds++] = fd;
    }
    l->fd = l->fds[0];
    {
      std::lock_guard<std::mutex> g(sh_->lmu);
      auto it = sh_->listeners.find(id);
      if (it != sh_->listeners.end()) {
        ReleaseListener(it->second);
        sh_->listeners.erase(it);
      }
      sh_->listeners[id] = l.release();
    }
    Command c{};
    c.v[0] = CMD_LISTEN;
    c.v[1] = id;
    for (auto& wk : sh_->workers) wk->Post(&c, 1);
    return Napi::Number::New(env, 0);
  }

  Napi::Value Unlisten(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    if (!sh_ || closed_) return env.Undefined();
    int id = info[0].As<Napi::Number>().Int32Value();
    Listener* l = nullptr;
    {
      std::lock_guard<std::mutex> g(sh_->lmu);
      auto it = sh_->listeners.find(id);
      if (it != sh_->listeners.end()) {
        l = it->second;
        sh_->listeners.erase(it);
      }
    }
    // Stop listening now (new clients are refused at once; the workers let go of the socket
    // when they get to the command below, and the last one closes it).
    if (l)
      for (int k = 0; k < l->nfds; k++) shutdown(l->fds[k], SHUT_RDWR);
    Command c{};
    c.v[0] = CMD_UNLISTEN;
    c.v[1] = id;
    for (auto& wk : sh_->workers) wk->Post(&c, 1);
    if (l) ReleaseListener(l);
    return env.Undefined();
  }

  // drain(Float64Array) -> number of records copied; when fewer than fit, the queue is empty
  Napi::Value Drain(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    if (!sh_) return Napi::Number::New(env, 0);
    Napi::Float64Array a = info[0].As<Napi::Float64Array>();
    size_t cap = a.ElementLength() / REC;
    double* dst = a.Data();
    size_t n;
    {
      std::lock_guard<std::mutex> g(sh_->qmu);
      size_t avail = sh_->q.size() - sh_->qhead;
      n = avail < cap ? avail : cap;
      if (n) memcpy(dst, &sh_->q[sh_->qhead], n * sizeof(Record));
      sh_->qhead += n;
      if (sh_->qhead == sh_->q.size()) {
        sh_->q.clear();
        sh_->qhead = 0;
        if (n < cap) sh_->signaled = false;
      }
    }
    return Napi::Number::New(env, (double)n);
  }

  // submit(Float64Array, count): commands for connections, routed to their workers
  Napi::Value Submit(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    if (!sh_ || closed_) return env.Undefined();
    Napi::Float64Array a = info[0].As<Napi::Float64Array>();
    size_t n = info[1].As<Napi::Number>().Uint32Value();
    if (n * CREC > a.ElementLength()) n = a.ElementLength() / CREC;
    const Command* cmds = reinterpret_cast<const Command*>(a.Data());
    size_t nw = sh_->workers.size();
    std::vector<Command> per[MAX_WORKERS];
    for (size_t i = 0; i < n; i++) {
      uint64_t nid = (uint64_t)cmds[i].v[1];
      size_t w = (size_t)((nid >> SLOT_BITS) & 15);
      if (w < nw) per[w].push_back(cmds[i]);
    }
    for (size_t w = 0; w < nw; w++)
      if (!per[w].empty()) sh_->workers[w]->Post(per[w].data(), per[w].size());
    return env.Undefined();
  }

  Napi::Value Stats(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    Napi::Object o = Napi::Object::New(env);
    uint64_t acc = 0, con = 0, cf = 0, cl = 0, rs = 0, lv = 0, bi = 0, bo = 0, sp = 0;
    if (sh_) {
      for (auto& w : sh_->workers) {
        acc += w->accepted.load();
        con += w->connected.load();
        cf += w->connectFailed.load();
        cl += w->closed.load();
        rs += w->resets.load();
        lv += w->live.load();
        bi += w->bytesIn.load();
        bo += w->bytesOut.load();
        sp += w->spliced.load();
      }
      o.Set("threads", Napi::Number::New(env, (double)sh_->workers.size()));
    }
    o.Set("accepted", Napi::Number::New(env, (double)acc));
    o.Set("connected", Napi::Number::New(env, (double)con));
    o.Set("connectFailed", Napi::Number::New(env, (double)cf));
    o.Set("closed", Napi::Number::New(env, (double)cl));
    o.Set("resets", Napi::Number::New(env, (double)rs));
    o.Set("live", Napi::Number::New(env, (double)lv));
    o.Set("bytesIn", Napi::Number::New(env, (double)bi));
    o.Set("bytesOut", Napi::Number::New(env, (double)bo));
    o.Set("splicedBytes", Napi::Number::New(env, (double)sp));
    return o;
  }

  Napi::Value Close(const Napi::CallbackInfo& info) {
    Shutdown();
    return info.Env().Undefined();
  }

  std::unique_ptr<Shared> sh_;
  bool closed_ = false;
  bool reusePort_ = false;
};

Napi::Object Init(Napi::Env env, Napi::Object exports) {
  exports.Set("Relay", Relay::Define(env));
  exports.Set("REC", Napi::Number::New(env, REC));
  exports.Set("CREC", Napi::Number::New(env, CREC));
  return exports;
}

}  // namespace

NODE_API_MODULE(tsvs_proxy, Init)
