// The proxy data plane's public surface (vsd's makePlanes constructs a ProxyPlane).

export { type PlaneLogger, ProxyPlane, type ProxyPlaneOptions, type ServiceNote } from './plane.js';
export { PROXY_V2_SIGNATURE, proxyHeader, proxyHeaderV1, proxyHeaderV2 } from './proxy-protocol.js';
export { loadNativeRelay, type NativeRelayOptions, nativeRelayLoadError } from './tcp-native.js';
export type { ListenerInfo, TcpRelay } from './types.js';
