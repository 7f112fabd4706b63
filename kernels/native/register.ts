/** Placeholder-free seam: the native/cuda backends are not built yet in this checkout. */
export async function registerNativeBackend(_name: 'native' | 'cuda'): Promise<boolean> {
  return false;
}
