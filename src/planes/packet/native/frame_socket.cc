// tsvs frame I/O: one AF_PACKET socket bound to one interface, with a TPACKET_V3 receive
// ring and a transmit ring mapped into JavaScript as two ArrayBuffers.
//
// The C++ side only keeps the ring bookkeeping and makes the syscalls; every decision about a
// frame is taken in TypeScript (src/planes/packet/frame-io.ts). Per batch, JavaScript makes one
// call: rxNext() releases the previous batch and fills offsets/lengths arrays for the next
// one (whole ring blocks, so one wakeup per block), and txSend()/txForward() publish a batch of
// transmit slots and kick the kernel with a single send(). Nothing is allocated per frame.
//
// Errors are thrown as JS errors shaped like Node's system errors (code, errno, syscall), never
// as crashes: the addon is built without C++ exceptions and checks every syscall.

#include <napi.h>
#include <uv.h>

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/if_ether.h>
#include <linux/if_packet.h>
#include <linux/if_tun.h>
#include <net/if.h>
#include <poll.h>
#include <pthread.h>
#include <sched.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <memory>
#include <string>

namespace {

// Marks our wrapper objects, so txForward() can tell a FrameSocket from any other object
// (works in every thread's environment, unlike a per-environment constructor reference).
const napi_type_tag kFrameSocketTag = {0x7473767366726d69ULL, 0x6f736f636b657431ULL};

// Our own flag in rxStatus: the kernel cut the frame to fit the ring (tp_snaplen < tp_len).
// Bit 28 is unused by TP_STATUS_* (which uses 0..7 and 29..31).
constexpr uint32_t kFrameTruncated = 1u << 28;

// The transmit data offset the kernel uses when tp_tx_has_off is off (TPACKET3_HDRLEN minus the
// sockaddr_ll it does not need for tx): frames start right after the aligned tpacket3_hdr.
constexpr uint32_t kTxDataOffset = TPACKET3_HDRLEN - sizeof(struct sockaddr_ll);

Napi::Error SysError(Napi::Env env, int err, const char* syscall, const std::string& what) {
  const char* code = uv_err_name(-err);
  std::string msg = std::string(code) + ": " + uv_strerror(-err) + ", " + syscall;
  if (!what.empty()) msg += " (" + what + ")";
  Napi::Error e = Napi::Error::New(env, msg);
  e.Set("code", Napi::String::New(env, code));
  e.Set("errno", Napi::Number::New(env, -err));
  e.Set("syscall", Napi::String::New(env, syscall));
  return e;
}

Napi::Value ThrowSys(Napi::Env env, int err, const char* syscall, const std::string& what) {
  SysError(env, err, syscall, what).ThrowAsJavaScriptException();
  return env.Undefined();
}

Napi::Value ThrowType(Napi::Env env, const std::string& msg) {
  Napi::TypeError::New(env, msg).ThrowAsJavaScriptException();
  return env.Undefined();
}

// Creating a socket inside another network namespace: a short-lived thread enters the
// namespace with setns() and creates the socket there. A socket keeps the namespace it was
// created in for its whole life (bind, ioctl and sends all use it), and the JS thread itself
// never changes namespace, so nothing has to be restored if something fails half way.
struct SocketJob {
  std::string nsPath;  // empty: the current namespace
  int family = AF_PACKET;
  int type = SOCK_RAW;
  int fd = -1;
  int err = 0;
  const char* syscall = "socket";
};

void* SocketJobRun(void* arg) {
  auto* job = static_cast<SocketJob*>(arg);
  if (!job->nsPath.empty()) {
    int nsfd = open(job->nsPath.c_str(), O_RDONLY | O_CLOEXEC);
    if (nsfd < 0) {
      job->err = errno;
      job->syscall = "open";
      return nullptr;
    }
    if (setns(nsfd, CLONE_NEWNET) < 0) {
      job->err = errno;
      job->syscall = "setns";
      close(nsfd);
      return nullptr;
    }
    close(nsfd);
  }
  // Protocol 0: the socket receives nothing until bind() names the protocol and interface.
  job->fd = socket(job->family, job->type | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
  if (job->fd < 0) job->err = errno;
  return nullptr;
}

void OpenSocket(SocketJob* job) {
  if (job->nsPath.empty()) {
    SocketJobRun(job);
    return;
  }
  pthread_t t;
  int rc = pthread_create(&t, nullptr, SocketJobRun, job);
  if (rc != 0) {
    job->err = rc;
    job->syscall = "pthread_create";
    return;
  }
  pthread_join(t, nullptr);
}

// "name" means /run/netns/name (what `ip netns add` creates); an absolute path is used as is
// (for example /proc/PID/ns/net).
std::string NetnsPath(const std::string& ns) {
  if (ns.empty() || ns[0] == '/') return ns;
  return "/run/netns/" + ns;
}

bool FillIfreq(struct ifreq* ifr, const std::string& name) {
  memset(ifr, 0, sizeof(*ifr));
  if (name.empty() || name.size() >= IFNAMSIZ) return false;
  memcpy(ifr->ifr_name, name.c_str(), name.size());
  return true;
}

// ifindex, MAC, MTU and flags of an interface, looked up in the namespace of socket fd.
Napi::Value InterfaceFacts(Napi::Env env, int fd, const std::string& name) {
  struct ifreq ifr;
  if (!FillIfreq(&ifr, name)) return ThrowSys(env, ENODEV, "ioctl", "interface name '" + name + "'");
  if (ioctl(fd, SIOCGIFINDEX, &ifr) < 0) return ThrowSys(env, errno, "ioctl", "SIOCGIFINDEX " + name);
  int ifindex = ifr.ifr_ifindex;
  if (ioctl(fd, SIOCGIFHWADDR, &ifr) < 0) return ThrowSys(env, errno, "ioctl", "SIOCGIFHWADDR " + name);
  int hwType = ifr.ifr_hwaddr.sa_family;
  Napi::Buffer<uint8_t> mac = Napi::Buffer<uint8_t>::Copy(env, reinterpret_cast<uint8_t*>(ifr.ifr_hwaddr.sa_data), 6);
  if (ioctl(fd, SIOCGIFMTU, &ifr) < 0) return ThrowSys(env, errno, "ioctl", "SIOCGIFMTU " + name);
  int mtu = ifr.ifr_mtu;
  if (ioctl(fd, SIOCGIFFLAGS, &ifr) < 0) return ThrowSys(env, errno, "ioctl", "SIOCGIFFLAGS " + name);
  Napi::Object o = Napi::Object::New(env);
  o.Set("name", name);
  o.Set("ifindex", ifindex);
  o.Set("hwType", hwType);
  o.Set("mac", mac);
  o.Set("mtu", mtu);
  o.Set("flags", static_cast<uint32_t>(ifr.ifr_flags) & 0xffff);
  return o;
}

// The mmap()ed rings outlive the socket while JavaScript still holds views on them:
// close() detaches the ArrayBuffers (views become empty) and unmaps at once; if the socket is
// garbage-collected without close(), the last ArrayBuffer finalizer unmaps instead.
struct Mapping {
  uint8_t* base = nullptr;
  size_t length = 0;
  std::atomic<int> refs{1};
  void Unmap() {
    if (base != nullptr) munmap(base, length);
    base = nullptr;
  }
  void Unref() {
    if (refs.fetch_sub(1) == 1) {
      Unmap();
      delete this;
    }
  }
};

template <typename T>
T LoadAcquire(T* p) {
  return __atomic_load_n(p, __ATOMIC_ACQUIRE);
}
template <typename T>
void StoreRelease(T* p, T v) {
  __atomic_store_n(p, v, __ATOMIC_RELEASE);
}

uint32_t OptU32(Napi::Object o, const char* key, uint32_t dflt) {
  Napi::Value v = o.Get(key);
  return v.IsNumber() ? v.As<Napi::Number>().Uint32Value() : dflt;
}
bool OptBool(Napi::Object o, const char* key, bool dflt) {
  Napi::Value v = o.Get(key);
  return v.IsBoolean() ? v.As<Napi::Boolean>().Value() : dflt;
}

class FrameSocket : public Napi::ObjectWrap<FrameSocket> {
 public:
  static Napi::Function Init(Napi::Env env) {
    return DefineClass(env, "FrameSocket",
                       {
                           InstanceMethod("info", &FrameSocket::Info),
                           InstanceMethod("rxNext", &FrameSocket::RxNext),
                           InstanceMethod("rxRelease", &FrameSocket::RxRelease),
                           InstanceMethod("wait", &FrameSocket::Wait),
                           InstanceMethod("startPoll", &FrameSocket::StartPoll),
                           InstanceMethod("stopPoll", &FrameSocket::StopPoll),
                           InstanceMethod("setRef", &FrameSocket::SetRef),
                           InstanceMethod("txReserve", &FrameSocket::TxReserve),
                           InstanceMethod("txSend", &FrameSocket::TxSend),
                           InstanceMethod("txForward", &FrameSocket::TxForward),
                           InstanceMethod("txFlush", &FrameSocket::TxFlush),
                           InstanceMethod("stats", &FrameSocket::Stats),
                           InstanceMethod("close", &FrameSocket::Close),
                       });
  }

  explicit FrameSocket(const Napi::CallbackInfo& info) : Napi::ObjectWrap<FrameSocket>(info) {
    Napi::Env env = info.Env();
    if (info.Length() < 1 || !info[0].IsObject()) {
      ThrowType(env, "FrameSocket(options): options must be an object");
      return;
    }
    Napi::Object opt = info[0].As<Napi::Object>();
    Napi::Value ifv = opt.Get("ifname");
    if (!ifv.IsString()) {
      ThrowType(env, "FrameSocket: options.ifname must be a string");
      return;
    }
    ifname_ = ifv.As<Napi::String>().Utf8Value();
    Napi::Value nsv = opt.Get("netns");
    std::string netns = nsv.IsString() ? nsv.As<Napi::String>().Utf8Value() : "";

    const bool wantRx = OptBool(opt, "rx", true);
    const bool wantTx = OptBool(opt, "tx", true);
    rxBlockSize_ = OptU32(opt, "rxBlockSize", 1u << 18);
    rxBlockNr_ = wantRx ? OptU32(opt, "rxBlockCount", 32) : 0;
    const uint32_t rxTimeoutMs = OptU32(opt, "rxBlockTimeoutMs", 1);
    rxMaxBlocks_ = OptU32(opt, "rxMaxBlocks", 8);
    txFrameSize_ = OptU32(opt, "txFrameSize", 2048);
    txFrameNr_ = wantTx ? OptU32(opt, "txFrameCount", 1024) : 0;
    const uint32_t headroom = OptU32(opt, "headroom", 0);
    const long page = sysconf(_SC_PAGESIZE);

    // Geometry checks the kernel would make too, turned into readable messages.
    if (wantRx && (rxBlockSize_ < static_cast<uint32_t>(page) || rxBlockSize_ % page != 0 || rxBlockNr_ < 2)) {
      ThrowType(env, "FrameSocket: rxBlockSize must be a multiple of the page size and rxBlockCount >= 2");
      return;
    }
    if (wantTx && (txFrameSize_ < 128 || txFrameSize_ % TPACKET_ALIGNMENT != 0 || txFrameSize_ > 65536 || txFrameNr_ < 2)) {
      ThrowType(env, "FrameSocket: txFrameSize must be a multiple of 16 in 128..65536 and txFrameCount >= 2");
      return;
    }
    if (rxMaxBlocks_ < 1) rxMaxBlocks_ = 1;
    if (rxMaxBlocks_ > rxBlockNr_) rxMaxBlocks_ = rxBlockNr_ > 0 ? rxBlockNr_ : 1;

    SocketJob job;
    job.nsPath = NetnsPath(netns);
    OpenSocket(&job);
    if (job.fd < 0) {
      ThrowSys(env, job.err, job.syscall, netns.empty() ? "AF_PACKET" : "netns " + netns);
      return;
    }
    fd_ = job.fd;
    if (!Setup(env, opt, wantRx, wantTx, rxTimeoutMs, headroom, static_cast<uint32_t>(page))) {
      Teardown(false);
      return;
    }
    Value().TypeTag(&kFrameSocketTag);
    napi_add_env_cleanup_hook(env, CleanupHook, this);
    hookAdded_ = true;
  }

  ~FrameSocket() override {
    if (hookAdded_) napi_remove_env_cleanup_hook(Env(), CleanupHook, this);
    Teardown(false);
  }

 private:
  bool Setup(Napi::Env env, Napi::Object opt, bool wantRx, bool wantTx, uint32_t rxTimeoutMs, uint32_t headroom,
             uint32_t page) {
    auto setopt = [&](int name, int value, const char* what) {
      if (setsockopt(fd_, SOL_PACKET, name, &value, sizeof(value)) < 0) {
        ThrowSys(env, errno, "setsockopt", what);
        return false;
      }
      return true;
    };
    struct ifreq ifr;
    if (!FillIfreq(&ifr, ifname_)) {
      ThrowSys(env, ENODEV, "ioctl", "interface name '" + ifname_ + "'");
      return false;
    }
    if (ioctl(fd_, SIOCGIFINDEX, &ifr) < 0) {
      ThrowSys(env, errno, "ioctl", "SIOCGIFINDEX " + ifname_);
      return false;
    }
    ifindex_ = ifr.ifr_ifindex;

    if (!setopt(PACKET_VERSION, TPACKET_V3, "PACKET_VERSION")) return false;
    if (headroom > 0 && !setopt(PACKET_RESERVE, static_cast<int>(headroom), "PACKET_RESERVE")) return false;
    if (OptBool(opt, "qdiscBypass", true) && !setopt(PACKET_QDISC_BYPASS, 1, "PACKET_QDISC_BYPASS")) return false;
    if (wantRx && OptBool(opt, "ignoreOutgoing", true) &&
        !setopt(PACKET_IGNORE_OUTGOING, 1, "PACKET_IGNORE_OUTGOING"))
      return false;
    // A malformed transmit frame is skipped instead of stopping the whole ring.
    if (wantTx && !setopt(PACKET_LOSS, 1, "PACKET_LOSS")) return false;

    size_t rxBytes = 0, txBytes = 0;
    if (wantRx) {
      struct tpacket_req3 req;
      memset(&req, 0, sizeof(req));
      req.tp_block_size = rxBlockSize_;
      req.tp_block_nr = rxBlockNr_;
      req.tp_frame_size = 2048;  // only used by the kernel to count frames in V3
      req.tp_frame_nr = (rxBlockSize_ / 2048) * rxBlockNr_;
      req.tp_retire_blk_tov = rxTimeoutMs;
      if (setsockopt(fd_, SOL_PACKET, PACKET_RX_RING, &req, sizeof(req)) < 0) {
        ThrowSys(env, errno, "setsockopt", "PACKET_RX_RING");
        return false;
      }
      rxBytes = static_cast<size_t>(rxBlockSize_) * rxBlockNr_;
      // An upper bound on frames per block (each takes at least TPACKET3_HDRLEN rounded up).
      rxCap_ = (rxBlockSize_ / 64) * rxMaxBlocks_;
    }
    if (wantTx) {
      // Frames must not straddle blocks: use blocks that hold a whole number of frames.
      uint32_t perBlock = page >= txFrameSize_ ? page / txFrameSize_ : 1;
      txBlockSize_ = perBlock * txFrameSize_;
      while (txBlockSize_ % page != 0) txBlockSize_ += txFrameSize_, perBlock++;
      txFramesPerBlock_ = perBlock;
      uint32_t blocks = (txFrameNr_ + perBlock - 1) / perBlock;
      txFrameNr_ = blocks * perBlock;
      struct tpacket_req3 req;
      memset(&req, 0, sizeof(req));
      req.tp_block_size = txBlockSize_;
      req.tp_block_nr = blocks;
      req.tp_frame_size = txFrameSize_;
      req.tp_frame_nr = txFrameNr_;
      if (setsockopt(fd_, SOL_PACKET, PACKET_TX_RING, &req, sizeof(req)) < 0) {
        ThrowSys(env, errno, "setsockopt", "PACKET_TX_RING");
        return false;
      }
      txBytes = static_cast<size_t>(txBlockSize_) * blocks;
      txCap_ = txFrameNr_;
    }

    if (rxBytes + txBytes > 0) {
      void* p = mmap(nullptr, rxBytes + txBytes, PROT_READ | PROT_WRITE, MAP_SHARED, fd_, 0);
      if (p == MAP_FAILED) {
        ThrowSys(env, errno, "mmap", "packet rings");
        return false;
      }
      map_ = new Mapping();
      map_->base = static_cast<uint8_t*>(p);
      map_->length = rxBytes + txBytes;
      rx_ = rxBytes > 0 ? map_->base : nullptr;
      tx_ = txBytes > 0 ? map_->base + rxBytes : nullptr;  // the kernel maps tx right after rx
      rxBytes_ = rxBytes;
      txBytes_ = txBytes;
    }

    // Bound to protocol 0 a socket only sends: a tx-only socket must not get a copy of every
    // received frame queued to it.
    struct sockaddr_ll sll;
    memset(&sll, 0, sizeof(sll));
    sll.sll_family = AF_PACKET;
    sll.sll_protocol = wantRx ? htons(ETH_P_ALL) : 0;
    sll.sll_ifindex = ifindex_;
    if (bind(fd_, reinterpret_cast<struct sockaddr*>(&sll), sizeof(sll)) < 0) {
      ThrowSys(env, errno, "bind", ifname_);
      return false;
    }

    if (OptBool(opt, "promiscuous", false)) {
      struct packet_mreq mr;
      memset(&mr, 0, sizeof(mr));
      mr.mr_ifindex = ifindex_;
      mr.mr_type = PACKET_MR_PROMISC;  // dropped by the kernel when the socket closes
      if (setsockopt(fd_, SOL_PACKET, PACKET_ADD_MEMBERSHIP, &mr, sizeof(mr)) < 0) {
        ThrowSys(env, errno, "setsockopt", "PACKET_ADD_MEMBERSHIP promiscuous");
        return false;
      }
    }

    // Fanout joins after bind (the kernel requires a bound, running socket).
    Napi::Value fo = opt.Get("fanout");
    if (wantRx && fo.IsNumber()) {
      int arg = static_cast<int>(fo.As<Napi::Number>().Uint32Value());
      if (setsockopt(fd_, SOL_PACKET, PACKET_FANOUT, &arg, sizeof(arg)) < 0) {
        ThrowSys(env, errno, "setsockopt", "PACKET_FANOUT");
        return false;
      }
    }

    // The arrays JavaScript reads and writes per batch; allocated once, here.
    Napi::Object self = Value();
    if (rx_ != nullptr) {
      self.Set("rxBuffer", NewRingBuffer(env, rx_, rxBytes_));
      rxOff_ = NewI32(env, self, "rxOffsets", rxCap_);
      rxLen_ = NewI32(env, self, "rxLengths", rxCap_);
      rxStat_ = NewI32(env, self, "rxStatus", rxCap_);
    }
    if (tx_ != nullptr) {
      self.Set("txBuffer", NewRingBuffer(env, tx_, txBytes_));
      txOff_ = NewI32(env, self, "txOffsets", txCap_);
      txLen_ = NewI32(env, self, "txLengths", txCap_);
      fwdIdx_ = NewI32(env, self, "forwardIndex", txCap_);
    }
    self.Set("fd", fd_);
    self.Set("ifindex", ifindex_);
    self.Set("rxCapacity", rxCap_);
    self.Set("txCapacity", txCap_);
    self.Set("txFrameRoom", tx_ != nullptr ? txFrameSize_ - kTxDataOffset : 0);
    return true;
  }

  Napi::ArrayBuffer NewRingBuffer(Napi::Env env, uint8_t* p, size_t len) {
    map_->refs.fetch_add(1);
    Napi::ArrayBuffer ab =
        Napi::ArrayBuffer::New(env, p, len, [](Napi::Env, void*, Mapping* m) { m->Unref(); }, map_);
    ringBuffers_[ringBufferCount_++] = Napi::Persistent(ab);
    return ab;
  }

  int32_t* NewI32(Napi::Env env, Napi::Object self, const char* name, uint32_t n) {
    Napi::Int32Array a = Napi::Int32Array::New(env, n > 0 ? n : 1);
    self.Set(name, a);
    return a.Data();  // backing store of a fresh non-empty typed array does not move
  }

  static void CleanupHook(void* arg) { static_cast<FrameSocket*>(arg)->Teardown(false); }

  // Stops polling, unmaps and closes. detach=true only from a JS call (needs a live env).
  void Teardown(bool detach) {
    if (poll_ != nullptr) {
      uv_poll_stop(poll_);
      uv_close(reinterpret_cast<uv_handle_t*>(poll_), [](uv_handle_t* h) { delete reinterpret_cast<uv_poll_t*>(h); });
      poll_ = nullptr;
    }
    if (!pollCb_.IsEmpty()) pollCb_.Reset();
    for (int i = 0; i < ringBufferCount_; i++) {
      if (detach && !ringBuffers_[i].IsEmpty()) ringBuffers_[i].Value().Detach();
      ringBuffers_[i].Reset();
    }
    ringBufferCount_ = 0;
    if (map_ != nullptr) {
      if (detach) map_->Unmap();  // no view can reach it any more
      map_->Unref();
      map_ = nullptr;
    }
    rx_ = tx_ = nullptr;
    rxCount_ = rxHeld_ = 0;
    txReserved_ = 0;
    if (fd_ >= 0) close(fd_);
    fd_ = -1;
  }

  bool CheckOpen(Napi::Env env) {
    if (fd_ >= 0) return true;
    ThrowSys(env, EBADF, "frame socket", "closed");
    return false;
  }

  Napi::Value Info(const Napi::CallbackInfo& info) {
    if (!CheckOpen(info.Env())) return info.Env().Undefined();
    return InterfaceFacts(info.Env(), fd_, ifname_);
  }

  tpacket_block_desc* RxBlock(uint32_t i) {
    return reinterpret_cast<tpacket_block_desc*>(rx_ + static_cast<size_t>(i) * rxBlockSize_);
  }

  void ReleaseHeld() {
    for (uint32_t k = 0; k < rxHeld_; k++) {
      StoreRelease(&RxBlock(rxHead_)->hdr.bh1.block_status, static_cast<uint32_t>(TP_STATUS_KERNEL));
      rxHead_ = (rxHead_ + 1) % rxBlockNr_;
    }
    rxHeld_ = 0;
    rxCount_ = 0;
  }

  // Releases the previous batch to the kernel, then gathers every frame of up to rxMaxBlocks
  // ready blocks into rxOffsets/rxLengths/rxStatus. Returns the frame count (0: nothing ready).
  Napi::Value RxNext(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    if (!CheckOpen(env)) return env.Undefined();
    if (rx_ == nullptr) return ThrowSys(env, EINVAL, "rxNext", "socket opened with rx: false");
    ReleaseHeld();
    uint32_t n = 0;
    while (rxHeld_ < rxMaxBlocks_) {
      uint32_t bi = (rxHead_ + rxHeld_) % rxBlockNr_;
      tpacket_block_desc* bd = RxBlock(bi);
      if ((LoadAcquire(&bd->hdr.bh1.block_status) & TP_STATUS_USER) == 0) break;
      uint32_t num = bd->hdr.bh1.num_pkts;
      if (n + num > rxCap_) break;  // cannot happen for the first block (rxCap_ bounds a block)
      const size_t blockOff = static_cast<size_t>(bi) * rxBlockSize_;
      uint32_t off = bd->hdr.bh1.offset_to_first_pkt;
      for (uint32_t k = 0; k < num && off < rxBlockSize_; k++) {
        auto* h = reinterpret_cast<tpacket3_hdr*>(rx_ + blockOff + off);
        uint32_t status = h->tp_status;
        if (h->tp_snaplen < h->tp_len) status |= kFrameTruncated;
        rxOff_[n] = static_cast<int32_t>(blockOff + off + h->tp_mac);
        rxLen_[n] = static_cast<int32_t>(h->tp_snaplen);
        rxStat_[n] = static_cast<int32_t>(status);
        n++;
        if (h->tp_next_offset == 0) break;
        off += h->tp_next_offset;
      }
      rxHeld_++;
    }
    rxCount_ = n;
    rxFrames_ += n;
    return Napi::Number::New(env, n);
  }

  Napi::Value RxRelease(const Napi::CallbackInfo& info) {
    if (rx_ != nullptr) ReleaseHeld();
    return info.Env().Undefined();
  }

  // Blocking poll(2) for worker threads that own their loop: true when a block is ready.
  Napi::Value Wait(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    if (!CheckOpen(env)) return env.Undefined();
    int timeout = info.Length() > 0 && info[0].IsNumber() ? info[0].As<Napi::Number>().Int32Value() : -1;
    struct pollfd p = {fd_, POLLIN, 0};
    int rc = poll(&p, 1, timeout);
    if (rc < 0 && errno != EINTR) return ThrowSys(env, errno, "poll", ifname_);
    if (rc > 0 && (p.revents & (POLLERR | POLLNVAL))) return ThrowSys(env, EIO, "poll", ifname_);
    return Napi::Boolean::New(env, rc > 0);
  }

  // Event-loop integration: libuv watches the fd and calls cb(status) when a block is ready.
  Napi::Value StartPoll(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    if (!CheckOpen(env)) return env.Undefined();
    if (rx_ == nullptr) return ThrowSys(env, EINVAL, "startPoll", "socket opened with rx: false");
    if (info.Length() < 1 || !info[0].IsFunction()) return ThrowType(env, "startPoll(cb): cb must be a function");
    pollCb_ = Napi::Persistent(info[0].As<Napi::Function>());
    if (poll_ == nullptr) {
      uv_loop_t* loop = nullptr;
      if (napi_get_uv_event_loop(env, &loop) != napi_ok || loop == nullptr)
        return ThrowSys(env, EINVAL, "napi_get_uv_event_loop", "");
      poll_ = new uv_poll_t;
      int rc = uv_poll_init(loop, poll_, fd_);
      if (rc != 0) {
        delete poll_;
        poll_ = nullptr;
        return ThrowSys(env, -rc, "uv_poll_init", ifname_);
      }
      poll_->data = this;
      if (asyncCtx_ == nullptr) asyncCtx_.reset(new Napi::AsyncContext(env, "tsvs.FrameSocket"));
    }
    int rc = uv_poll_start(poll_, UV_READABLE, OnPoll);
    if (rc != 0) return ThrowSys(env, -rc, "uv_poll_start", ifname_);
    if (!pollRef_) uv_unref(reinterpret_cast<uv_handle_t*>(poll_));
    return env.Undefined();
  }

  static void OnPoll(uv_poll_t* h, int status, int /*events*/) {
    auto* self = static_cast<FrameSocket*>(h->data);
    if (self == nullptr || self->pollCb_.IsEmpty()) return;
    Napi::Env env = self->Env();
    Napi::HandleScope scope(env);
    self->pollCb_.MakeCallback(self->Value(), {Napi::Number::New(env, status)}, *self->asyncCtx_);
    // With C++ exceptions off, a throw in the callback stays pending: hand it to Node's
    // uncaughtException machinery, as an exception thrown by any other callback would be.
    if (env.IsExceptionPending()) {
      Napi::Error e = env.GetAndClearPendingException();
      napi_fatal_exception(env, e.Value());
    }
  }

  Napi::Value StopPoll(const Napi::CallbackInfo& info) {
    if (poll_ != nullptr) uv_poll_stop(poll_);
    return info.Env().Undefined();
  }

  Napi::Value SetRef(const Napi::CallbackInfo& info) {
    pollRef_ = info.Length() > 0 && info[0].ToBoolean().Value();
    if (poll_ != nullptr) {
      if (pollRef_)
        uv_ref(reinterpret_cast<uv_handle_t*>(poll_));
      else
        uv_unref(reinterpret_cast<uv_handle_t*>(poll_));
    }
    return info.Env().Undefined();
  }

  tpacket3_hdr* TxSlot(uint32_t i) {
    size_t off = static_cast<size_t>(i / txFramesPerBlock_) * txBlockSize_ +
                 static_cast<size_t>(i % txFramesPerBlock_) * txFrameSize_;
    return reinterpret_cast<tpacket3_hdr*>(tx_ + off);
  }

  bool TxSlotFree(uint32_t i) {
    uint32_t st = LoadAcquire(&TxSlot(i)->tp_status);
    return st == TP_STATUS_AVAILABLE || st == TP_STATUS_WRONG_FORMAT;
  }

  // Fills txOffsets with the frame offsets (in txBuffer) of up to max free slots, in ring
  // order. JavaScript writes frames there and their lengths into txLengths, then txSend(n).
  Napi::Value TxReserve(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    if (!CheckOpen(env)) return env.Undefined();
    if (tx_ == nullptr) return ThrowSys(env, EINVAL, "txReserve", "socket opened with tx: false");
    uint32_t max = info.Length() > 0 && info[0].IsNumber() ? info[0].As<Napi::Number>().Uint32Value() : txCap_;
    if (max > txCap_) max = txCap_;
    uint32_t n = 0;
    for (uint32_t i = txHead_; n < max && TxSlotFree(i); i = (i + 1) % txFrameNr_) {
      txOff_[n++] = static_cast<int32_t>(reinterpret_cast<uint8_t*>(TxSlot(i)) - tx_ + kTxDataOffset);
    }
    txReserved_ = n;
    return Napi::Number::New(env, n);
  }

  // Publishes one slot to the kernel; the caller checked that it is free.
  void TxPublish(uint32_t len) {
    tpacket3_hdr* h = TxSlot(txHead_);
    h->tp_len = len;
    h->tp_snaplen = len;
    StoreRelease(&h->tp_status, static_cast<uint32_t>(TP_STATUS_SEND_REQUEST));
    txHead_ = (txHead_ + 1) % txFrameNr_;
  }

  // One send() for everything published: the kernel walks the ring from its own head.
  // EAGAIN/ENOBUFS leave frames queued for the next kick; other errors are reported.
  int Kick() {
    if (send(fd_, nullptr, 0, MSG_DONTWAIT) < 0) {
      int e = errno;
      if (e == EAGAIN || e == ENOBUFS || e == EINTR) return 0;
      return e;
    }
    return 0;
  }

  Napi::Value TxSend(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    if (!CheckOpen(env)) return env.Undefined();
    if (tx_ == nullptr) return ThrowSys(env, EINVAL, "txSend", "socket opened with tx: false");
    uint32_t n = info.Length() > 0 && info[0].IsNumber() ? info[0].As<Napi::Number>().Uint32Value() : 0;
    if (n > txReserved_) return ThrowType(env, "txSend(n): n is larger than the last txReserve() count");
    const uint32_t room = txFrameSize_ - kTxDataOffset;
    for (uint32_t k = 0; k < n; k++) {
      int32_t len = txLen_[k];
      if (len < ETH_HLEN || static_cast<uint32_t>(len) > room) {
        return ThrowType(env, "txSend: txLengths[" + std::to_string(k) + "] = " + std::to_string(len) +
                                  " is outside " + std::to_string(ETH_HLEN) + ".." + std::to_string(room));
      }
    }
    for (uint32_t k = 0; k < n; k++) TxPublish(static_cast<uint32_t>(txLen_[k]));
    txReserved_ = 0;
    txFrames_ += n;
    if (n > 0) {
      int e = Kick();
      if (e != 0) return ThrowSys(env, e, "send", ifname_);
    }
    return Napi::Number::New(env, n);
  }

  // Copies frames of another socket's current rx batch (indices in forwardIndex) into free tx
  // slots and sends them with one syscall: a forwarding plane rewrites frames in place in the
  // rx ring, lists the ones to send, and pays one memcpy per frame. Returns the count queued;
  // frames beyond the free slots, too long for a slot, or with a bad index are dropped (counted).
  Napi::Value TxForward(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    if (!CheckOpen(env)) return env.Undefined();
    if (tx_ == nullptr) return ThrowSys(env, EINVAL, "txForward", "socket opened with tx: false");
    if (info.Length() < 2 || !info[0].IsObject() || !info[1].IsNumber())
      return ThrowType(env, "txForward(source, n): source must be a FrameSocket");
    Napi::Object srcObj = info[0].As<Napi::Object>();
    if (!srcObj.CheckTypeTag(&kFrameSocketTag))
      return ThrowType(env, "txForward(source, n): source must be a FrameSocket");
    FrameSocket* src = FrameSocket::Unwrap(srcObj);
    if (src->rx_ == nullptr) return ThrowSys(env, EINVAL, "txForward", "source has no rx ring");
    uint32_t n = info[1].As<Napi::Number>().Uint32Value();
    if (n > txCap_) n = txCap_;
    const uint32_t room = txFrameSize_ - kTxDataOffset;
    uint32_t queued = 0;
    for (uint32_t k = 0; k < n; k++) {
      int32_t idx = fwdIdx_[k];
      if (idx < 0 || static_cast<uint32_t>(idx) >= src->rxCount_) {
        txDropped_++;
        continue;
      }
      int32_t off = src->rxOff_[idx];
      int32_t len = src->rxLen_[idx];
      if (off < 0 || len < ETH_HLEN || static_cast<uint32_t>(len) > room ||
          static_cast<size_t>(off) + static_cast<size_t>(len) > src->rxBytes_) {
        txDropped_++;
        continue;
      }
      if (!TxSlotFree(txHead_)) {
        txDropped_ += n - k;
        break;
      }
      memcpy(reinterpret_cast<uint8_t*>(TxSlot(txHead_)) + kTxDataOffset, src->rx_ + off, len);
      TxPublish(static_cast<uint32_t>(len));
      queued++;
    }
    txReserved_ = 0;
    txFrames_ += queued;
    if (queued > 0) {
      int e = Kick();
      if (e != 0) return ThrowSys(env, e, "send", ifname_);
    }
    return Napi::Number::New(env, queued);
  }

  Napi::Value TxFlush(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    if (!CheckOpen(env) || tx_ == nullptr) return env.Undefined();
    int e = Kick();
    if (e != 0) return ThrowSys(env, e, "send", ifname_);
    return env.Undefined();
  }

  // Kernel counters (reset by each read, so accumulated here) plus our own.
  Napi::Value Stats(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    if (fd_ >= 0 && rx_ != nullptr) {
      struct tpacket_stats_v3 st;
      socklen_t len = sizeof(st);
      memset(&st, 0, sizeof(st));
      if (getsockopt(fd_, SOL_PACKET, PACKET_STATISTICS, &st, &len) == 0) {
        kPackets_ += st.tp_packets;
        kDrops_ += st.tp_drops;
        kFreezes_ += st.tp_freeze_q_cnt;
      }
    }
    Napi::Object o = Napi::Object::New(env);
    o.Set("rxFrames", static_cast<double>(rxFrames_));
    o.Set("kernelPackets", static_cast<double>(kPackets_));
    o.Set("kernelDrops", static_cast<double>(kDrops_));
    o.Set("kernelFreezes", static_cast<double>(kFreezes_));
    o.Set("txFrames", static_cast<double>(txFrames_));
    o.Set("txDropped", static_cast<double>(txDropped_));
    return o;
  }

  Napi::Value Close(const Napi::CallbackInfo& info) {
    Teardown(true);
    return info.Env().Undefined();
  }

  std::string ifname_;
  int fd_ = -1;
  int ifindex_ = 0;
  Mapping* map_ = nullptr;
  Napi::Reference<Napi::ArrayBuffer> ringBuffers_[2];
  int ringBufferCount_ = 0;

  uint8_t* rx_ = nullptr;
  size_t rxBytes_ = 0;
  uint32_t rxBlockSize_ = 0, rxBlockNr_ = 0, rxMaxBlocks_ = 1, rxCap_ = 0;
  uint32_t rxHead_ = 0, rxHeld_ = 0, rxCount_ = 0;
  int32_t *rxOff_ = nullptr, *rxLen_ = nullptr, *rxStat_ = nullptr;

  uint8_t* tx_ = nullptr;
  size_t txBytes_ = 0;
  uint32_t txFrameSize_ = 0, txFrameNr_ = 0, txBlockSize_ = 0, txFramesPerBlock_ = 1, txCap_ = 0;
  uint32_t txHead_ = 0, txReserved_ = 0;
  int32_t *txOff_ = nullptr, *txLen_ = nullptr, *fwdIdx_ = nullptr;

  uint64_t rxFrames_ = 0, txFrames_ = 0, txDropped_ = 0, kPackets_ = 0, kDrops_ = 0, kFreezes_ = 0;

  uv_poll_t* poll_ = nullptr;
  bool pollRef_ = true;
  Napi::FunctionReference pollCb_;
  std::unique_ptr<Napi::AsyncContext> asyncCtx_;
  bool hookAdded_ = false;
};

// interfaceInfo(ifname, netns?): facts about an interface without opening a packet socket
// (an AF_INET datagram socket in the right namespace is enough for the ioctls).
Napi::Value InterfaceInfo(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() < 1 || !info[0].IsString()) return ThrowType(env, "interfaceInfo(ifname, netns?)");
  std::string name = info[0].As<Napi::String>().Utf8Value();
  std::string ns = info.Length() > 1 && info[1].IsString() ? info[1].As<Napi::String>().Utf8Value() : "";
  SocketJob job;
  job.nsPath = NetnsPath(ns);
  job.family = AF_INET;
  job.type = SOCK_DGRAM;
  OpenSocket(&job);
  if (job.fd < 0) return ThrowSys(env, job.err, job.syscall, ns.empty() ? "AF_INET" : "netns " + ns);
  Napi::Value r = InterfaceFacts(env, job.fd, name);
  close(job.fd);
  return r;
}

// waitAny(fds, timeoutMs): poll(2) on several ring sockets at once (a worker thread that owns
// one ring per interface sleeps on all of them). Returns the number of ready sockets.
Napi::Value WaitAny(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() < 2 || !info[0].IsArray() || !info[1].IsNumber()) return ThrowType(env, "waitAny(fds, timeoutMs)");
  Napi::Array arr = info[0].As<Napi::Array>();
  uint32_t n = arr.Length();
  if (n > 64) return ThrowType(env, "waitAny: at most 64 sockets");
  struct pollfd p[64];
  for (uint32_t i = 0; i < n; i++) {
    Napi::Value v = arr.Get(i);
    if (!v.IsNumber()) return ThrowType(env, "waitAny: fds must be numbers");
    p[i].fd = v.As<Napi::Number>().Int32Value();
    p[i].events = POLLIN;
    p[i].revents = 0;
  }
  int rc = poll(p, n, info[1].As<Napi::Number>().Int32Value());
  if (rc < 0 && errno != EINTR) return ThrowSys(env, errno, "poll", "waitAny");
  return Napi::Number::New(env, rc < 0 ? 0 : rc);
}

// openTun(name): a TUN device (IFF_TUN | IFF_NO_PI: whole IP packets, no extra header) in the
// calling thread's namespace, for vsrs, the tunnel real-server agent, which writes the packets
// it decapsulates into it. Returns { fd, name }; the device goes away when the fd is closed.
Napi::Value OpenTun(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() < 1 || !info[0].IsString()) return ThrowType(env, "openTun(name)");
  std::string name = info[0].As<Napi::String>().Utf8Value();
  struct ifreq ifr;
  if (!FillIfreq(&ifr, name)) return ThrowSys(env, EINVAL, "openTun", "interface name '" + name + "'");
  int fd = open("/dev/net/tun", O_RDWR | O_CLOEXEC);
  if (fd < 0) return ThrowSys(env, errno, "open", "/dev/net/tun");
  ifr.ifr_flags = IFF_TUN | IFF_NO_PI;
  if (ioctl(fd, TUNSETIFF, &ifr) < 0) {
    int e = errno;
    close(fd);
    return ThrowSys(env, e, "ioctl", "TUNSETIFF " + name);
  }
  Napi::Object o = Napi::Object::New(env);
  o.Set("fd", fd);
  o.Set("name", std::string(ifr.ifr_name));
  return o;
}

Napi::Object InitModule(Napi::Env env, Napi::Object exports) {
  exports.Set("FrameSocket", FrameSocket::Init(env));
  exports.Set("interfaceInfo", Napi::Function::New(env, InterfaceInfo));
  exports.Set("openTun", Napi::Function::New(env, OpenTun));
  exports.Set("waitAny", Napi::Function::New(env, WaitAny));
  exports.Set("TX_DATA_OFFSET", kTxDataOffset);
  exports.Set("FRAME_TRUNCATED", kFrameTruncated);
  return exports;
}

}  // namespace

NODE_API_MODULE(tsvs_frameio, InitModule)
