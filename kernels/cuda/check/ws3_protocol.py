#!/usr/bin/env python3
# python3 kernels/cuda/check/ws3_protocol.py: a model of the ws3 kernels' slot protocol (no GPU).
# Randomized simulation of the producer/consumer protocol of bsa_fwd_wgmma_ws3k128_k (full/empty
# mbarriers with phase parity, meta per slot, flush-on-skip), with slots of one union tile (12-slot
# ring, the first ws3 kernel) and of two (6 slots, 128-key steps: a group takes a slot when it lists
# either tile); checks every group sees exactly its list, in order, that slot contents are never
# overwritten while in use, and that nothing deadlocks.
import random
G=3
class Bar:
    def __init__(s,count): s.count=count; s.pending=count; s.phase=0  # completed phases = s.phase
    def arrive(s):
        s.pending-=1
        if s.pending==0: s.phase+=1; s.pending=s.count
    def done(s,parity): # try_wait.parity: true once the phase with this parity has completed
        # current phase index = s.phase (in progress); phase k completed iff k < s.phase
        # waiting with parity P returns when current phase parity != P
        return (s.phase & 1) != parity
def run(lists, seed, per):  # per: union tiles per slot (1 or 2)
    S=12 if per==1 else 6
    rnd=random.Random(seed)
    full=[Bar(1) for _ in range(S)]; empty=[Bar(4*G) for _ in range(S)]
    meta=[None]*S; slotdata=[None]*S; inuse=[set() for _ in range(S)]
    def producer():
        ptr=[0]*G; f=0
        while True:
            cs=[]; at=[]
            for _ in range(per):  # the next tiles of the union walk
                col=[lists[w][ptr[w]] if ptr[w]<len(lists[w]) else 10**9 for w in range(G)]
                c=min(col); cs.append(c)
                at.append([ptr[w] if c<10**9 and col[w]==c else -1 for w in range(G)])
                for w in range(G):
                    if at[-1][w]>=0: ptr[w]+=1
            st=f%S
            if f>=S:
                while not empty[st].done((f//S-1)&1): yield
            assert not inuse[st], ('overwrite in use', st, inuse[st])
            if cs[0]==10**9:
                meta[st]=(-1,); full[st].arrive(); return
            meta[st]=(cs[0],)+tuple(tuple(at[x][w] for x in range(per)) for w in range(G))
            slotdata[st]=cs
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
                if any(a>=0 for a in m[1+w]): yield True; return
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
            if warp==0: seen[w].extend(c for c,a in zip(slotdata[st], meta[st][1+w]) if a>=0)
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
    for per in (1, 2): run(lists, trial, per)
    n+=1
print('ok', n, 'layouts, slots of one and of two tiles')
