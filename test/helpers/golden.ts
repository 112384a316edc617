// Where the golden fixtures (captures of the real kernel IPVS and ipvsadm) live in the repo.
export const GOLDEN_IPVSADM = new URL('../fixtures/golden/ipvsadm/', import.meta.url).pathname;
export const GOLDEN_SCHEDULING = new URL('../fixtures/golden/scheduling/', import.meta.url).pathname;
