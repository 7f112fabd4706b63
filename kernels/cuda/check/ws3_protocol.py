#!/usr/bin/env python3
# python3 kernels/cuda/check/ws3_protocol.py: a model of bsa_fwd_wgmma_ws3_k's slot protocol (no GPU).
# Randomized simulation of the ws3 kernel's producer/consumer protocol (full/empty mbarriers with
# phase parity, meta per slot, flush-on-skip); checks every group sees exactly its list, in order,
# that slot contents are never overwritten while in use, and that nothing deadlocks.
import random
S=12; G=3
class Bar:
    def __init__(s,count): s.count=count; s.pending=count; s.phase=0  # completed phases = s.phase
    def arrive(s):
        s.pending-=1
        if s.pending==0: s.phase+=1; s.pending=s.count
    def done(s,parity): # try_wait.parity: true once the phase with this parity has completed
        # current phase index = s.phase (in progress); phase k completed iff k < s.phase
        # waiting with parity P returns when current phase parity != P
        return (s.phase & 1) != parity
def run(lists, seed):
    rnd=random.Random(seed)
    full=[Bar(1) for _ in range(S)]; empty=[Bar(4*G) for _ in range(S)]
    meta=[None]*S; slotdata=[None]*S; inuse=[set() for _ in range(S)]
    def producer():
        ptr=[0]*G; f=0
        while True:
            col=[lists[w][ptr[w]] if ptr[w]<len(lists[w]) else 10**9 for w in range(G)]
            c=min(col); st=f%S
            if f>=S:
                while not empty[st].done((f//S-1)&1): yield
            assert not inuse[st], ('overwrite in use', st, inuse[st])
            if c==10**9:
                meta[st]=(-1,); full[st].arrive(); return
            meta[st]=(c,)+tuple(ptr[w] if col[w]==c else -1 for w in range(G))
            for w in range(G):
                if col[w]==c: ptr[w]+=1
            slotdata[st]=c
            yield  # the copy lands later
            full[st].arrive()
            f+=1
    seen=[[] for _ in range(G)]
    def consumer(w, warp):
        # each of 4 warps walks identically; warp 0 records
        cur=0; prev=None; pending=False
        def release(f):
            empty[f%S].arrive()
        def advance():
            nonlocal cur, pending
            while True:
                st=cur%S
                while not full[st].done((cur//S)&1): yield None
                m=meta[st]
                if m[0]<0: yield False; return
                pi=m[1+w]
                if pi>=0: yield True; return
                if pending:
                    inuse[prev%S].discard((w,warp)); release(prev); pending=False
                release(cur); cur+=1
        while True:
            r=None
            for r in advance():
                if r is None: yield
                else: break
            if not r: break
            st=cur%S; inuse[st].add((w,warp))
            if warp==0: seen[w].append(slotdata[st])
            yield
            if pending:
                inuse[prev%S].discard((w,warp)); release(prev)
            prev=cur; cur+=1; pending=True
        if pending:
            inuse[prev%S].discard((w,warp)); release(prev)
    agents=[producer()]+[consumer(w,k) for w in range(G) for k in range(4)]
    steps=0
    while agents:
        a=rnd.choice(agents)
        try: next(a)
        except StopIteration: agents.remove(a)
        steps+=1
        if steps>10**6: raise RuntimeError('deadlock '+str(lists))
    for w in range(G): assert seen[w]==lists[w], (w, seen[w], lists[w])
rng=random.Random(1)
n=0
for trial in range(400):
    nK=rng.choice([1,3,8,40,100])
    kind=rng.choice(['dense','window','random','global','empty'])
    lists=[]
    for w in range(G):
        if kind=='dense': l=list(range(nK))
        elif kind=='window': i=rng.randrange(nK); l=list(range(max(0,i-4+w),min(nK,i+5+w)))
        elif kind=='empty': l=[] if rng.random()<0.5 else sorted(rng.sample(range(nK),rng.randint(0,nK)))
        elif kind=='global': l=list(range(nK)) if w<2 and rng.random()<0.7 else sorted(set(rng.sample(range(nK),min(nK,3))))
        else: l=sorted(rng.sample(range(nK),rng.randint(0,nK)))
        lists.append(l)
    run(lists, trial); n+=1
print('ok', n, 'layouts')
