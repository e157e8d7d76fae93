#!/usr/bin/env python3
"""Manual smoke test of lxcri-init on real LXC (root, lxc 5.x, busybox-static).

Plays the shim's side of the init protocol (lxcri-init-spec): listens on
init.sock, reads the Ready/Failed line, sends stdio fds or receives the pty
master, writes the start byte, reads the exit report; the `exec` case also
runs `lxcri-init exec` against the running container. One container per
case under /tmp/lxcri-smoke/, stopped and removed afterwards.

usage: lxc_smoke.py <path/to/lxcri-init> <case>|all
"""
import json, os, socket, struct, subprocess, sys, time, shutil, select, signal

BIN = os.path.abspath(sys.argv[1])
CASE = sys.argv[2]
NAME = f"lxcri-smoke-{os.getpid()}-{CASE}"
BASE = f"/tmp/lxcri-smoke/{NAME}"
LXC = None
LXCPATH, ROOTFS, RUN = f"{BASE}/lxc", f"{BASE}/rootfs", f"{BASE}/run"

def proc(args, env=None, **kw):
    p = dict(args=args, env=env or ["PATH=/bin:/sbin", "HOME=/root"], cwd="/", uid=0, gid=0,
             capabilities=dict(bounding=ALLCAPS, effective=ALLCAPS, inheritable=[], permitted=ALLCAPS, ambient=[]))
    p.update(kw)
    return p

ALLCAPS = ["CAP_CHOWN","CAP_DAC_OVERRIDE","CAP_FOWNER","CAP_FSETID","CAP_KILL","CAP_SETGID","CAP_SETUID",
           "CAP_SETPCAP","CAP_NET_BIND_SERVICE","CAP_NET_RAW","CAP_SYS_CHROOT","CAP_MKNOD","CAP_AUDIT_WRITE","CAP_SETFCAP"]

def bpf_deny_mkdir():
    ins = [(0x20,0,0,0), (0x15,2,0,83), (0x15,1,0,258), (0x06,0,0,0x7fff0000), (0x06,0,0,0x00050001)]
    return list(b"".join(struct.pack("=HBBI", *i) for i in ins))

CASES = {
  "exit3": dict(spec=dict(process=proc(["sh","-c","echo hi; echo err >&2; exit 3"])), expect=3),
  "kill9": dict(spec=dict(process=proc(["sh","-c","kill -9 $$"])), expect=137),
  "notfound": dict(spec=dict(process=proc(["nope"])), expect="failed"),
  "security": dict(spec=dict(
      process=proc(["sh","-c",
        "id; grep -E '^(Cap|NoNewPrivs|Seccomp:)' /proc/self/status; ulimit -n; umask; pwd; "
        "ls /.lxcri 2>&1; touch /rootfile 2>&1; mkdir /tmp/d 2>&1; echo > /proc/sys/kernel/hostname 2>&1; "
        "echo version=$(wc -c < /proc/version) firmware=$(ls /sys/firmware | wc -l); grep -E ' /proc/(sys|version) ' /proc/self/mountinfo; ls -l /dev/fd /dev/stdin /dev/ptmx; ls -la /proc/self/fd; exit 0"],
        cwd="/work/dir", uid=1000, gid=1000, additional_gids=[10, 20], umask=0o027, no_new_privileges=True,
        capabilities=dict(bounding=["CAP_KILL","CAP_NET_BIND_SERVICE"], effective=["CAP_NET_BIND_SERVICE"],
                          inheritable=["CAP_NET_BIND_SERVICE"], permitted=["CAP_KILL","CAP_NET_BIND_SERVICE"],
                          ambient=["CAP_NET_BIND_SERVICE"]),
        rlimits=[dict(resource="RLIMIT_NOFILE", soft=123, hard=456)],
        seccomp=dict(bpf=bpf_deny_mkdir(), flags=0)),
      rootfs_readonly=True, masked_paths=["/proc/kcore","/proc/version","/sys/firmware","/nonexistent"],
      readonly_paths=["/proc/sys","/missing"]), expect=0),
  "seccomp_no_nnp": dict(spec=dict(process=proc(["sh","-c","mkdir /tmp/x 2>&1; grep Seccomp: /proc/self/status"],
        seccomp=dict(bpf=bpf_deny_mkdir(), flags=0)), rootfs_readonly=False), expect=0),
  "apparmor": dict(spec=dict(process=proc(["true"], apparmor_profile="lxcri-default")), expect=125),
  "rlimit_eperm": dict(spec=dict(process=proc(["true"], rlimits=[dict(resource="RLIMIT_NOFILE", soft=1<<30, hard=1<<30)])), expect=125),
  "tty": dict(spec=dict(process=proc(["sh","-c","tty; stty size; echo tty-ok; exit 7"], terminal=True,
        console_size=dict(rows=33, cols=99))), expect=7),
  "sigterm": dict(spec=dict(process=proc(["sleep","1000"])), expect=143, action="sigterm"),
  "orphans": dict(spec=dict(process=proc(["sh","-c","(sleep 0.2 &) ; sleep 1; ps -o pid,stat,comm 2>/dev/null || ps; exit 0"])), expect=0),
  "exec": dict(spec=dict(process=proc(["sh","-c","trap 'exit 42' TERM; while true; do sleep 0.1; done"])), expect=42, action="exec"),
  "hold": dict(spec=dict(process=proc(["sh","-c","trap 'exit 42' TERM; while true; do sleep 0.1; done"])), expect=42, action="hold"),
  "prestart_kill": dict(spec=dict(process=proc(["true"])), expect=143, action="prestart_kill"),
}

def sh(*a, check=True):
    return subprocess.run(a, check=check, capture_output=True, text=True)

def setup(spec):
    for d in (f"{ROOTFS}/bin", f"{ROOTFS}/sbin", f"{ROOTFS}/proc", f"{ROOTFS}/sys", f"{ROOTFS}/dev",
              f"{ROOTFS}/tmp", f"{ROOTFS}/etc", f"{ROOTFS}/.lxcri", RUN, f"{LXCPATH}/{NAME}"):
        os.makedirs(d, exist_ok=True)
    shutil.copy("/bin/busybox", f"{ROOTFS}/bin/busybox")
    # --install -s would link to the host path; the links must be relative
    for applet in sh("/bin/busybox", "--list").stdout.split():
        if applet != "busybox" and not os.path.lexists(f"{ROOTFS}/bin/{applet}"):
            os.symlink("busybox", f"{ROOTFS}/bin/{applet}")
    os.chmod(f"{ROOTFS}/tmp", 0o1777)
    shutil.copy(BIN, f"{RUN}/lxcri-init")
    with open(f"{RUN}/init.json", "w") as f:
        json.dump(spec, f)
    os.mkfifo(f"{RUN}/start", 0o600)
    with open(f"{LXCPATH}/{NAME}/config", "w") as f:
        f.write(f"""lxc.uts.name = {NAME[:60]}
lxc.rootfs.path = dir:{ROOTFS}
lxc.init.cmd = /.lxcri/lxcri-init
lxc.mount.entry = {RUN} .lxcri none bind,create=dir 0 0
lxc.mount.auto = proc:rw sys:ro
lxc.autodev = 1
lxc.pty.max = 1024
lxc.tty.max = 0
lxc.console.path = none
lxc.apparmor.profile = unconfined
lxc.net.0.type = empty
""")

def cleanup():
    subprocess.run(["lxc-stop", "-k", "-n", NAME, "-P", LXCPATH], capture_output=True)
    for _ in range(50):
        r = subprocess.run(["lxc-info", "-s", "-n", NAME, "-P", LXCPATH], capture_output=True, text=True)
        if "RUNNING" not in r.stdout:
            break
        time.sleep(0.1)
    if LXC is not None:
        LXC.wait(timeout=10)
    subprocess.run(["umount", "-l", f"{ROOTFS}/.lxcri"], capture_output=True)
    if os.path.exists(f"{BASE}/init.stderr") and os.path.getsize(f"{BASE}/init.stderr"):
        print("init stderr at cleanup:", open(f"{BASE}/init.stderr").read())
    shutil.rmtree(BASE, ignore_errors=True)

def main():
    case = CASES[CASE]
    setup(case["spec"])
    srv = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    srv.bind(f"{RUN}/init.sock"); srv.listen(1); srv.settimeout(15)
    out_path, err_path = f"{BASE}/stdout", f"{BASE}/stderr"
    # Foreground in the background: with lxc.console.path = none the init
    # inherits this stderr, so its own messages end up in init.stderr.
    global LXC
    LXC = subprocess.Popen(["lxc-start", "-F", "-n", NAME, "-P", LXCPATH, "-o", f"{BASE}/lxc.log", "-l", "INFO"],
                           stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=open(f"{BASE}/init.stderr", "w"))
    class R: returncode = 0; stderr = ""
    r = R()
    if r.returncode:
        print("lxc-start failed:", r.stderr); print(open(f"{BASE}/lxc.log").read()); return 1
    conn, _ = srv.accept()
    pid = struct.unpack("3i", conn.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, 12))[0]
    # Byte by byte: a buffered reader would swallow the pty tag byte that
    # follows the line, and with it the SCM_RIGHTS fd.
    line = b""
    while not line.endswith(b"\n"):
        c = conn.recv(1)
        if not c: break
        line += c
    msg = json.loads(line)
    print("init host pid", pid, "message", msg)
    if msg["kind"] != "ready":
        ok = case["expect"] == "failed"
        print("PASS" if ok else "FAIL: init failed")
        return 0 if ok else 1
    master = None
    if case["spec"]["process"].get("terminal"):
        data, fds, _, _ = socket.recv_fds(conn, 1, 4)
        assert data == b"T" and len(fds) == 1, (data, fds)
        master = fds[0]
    else:
        fds = [os.open("/dev/null", os.O_RDONLY), os.open(out_path, os.O_WRONLY | os.O_CREAT, 0o644),
               os.open(err_path, os.O_WRONLY | os.O_CREAT, 0o644)]
        socket.send_fds(conn, [b"S"], fds)
        for fd in fds: os.close(fd)
    conn.close()
    time.sleep(0.2)
    print("init stderr so far:", open(f"{BASE}/init.stderr").read())
    action = case.get("action")
    if action == "prestart_kill":
        time.sleep(0.3); os.kill(pid, signal.SIGTERM)
    else:
        fifo = os.open(f"{RUN}/start", os.O_WRONLY)
        os.write(fifo, b"x"); os.close(fifo)
    tty_out = b""
    if action == "sigterm":
        time.sleep(0.5); os.kill(pid, signal.SIGTERM)
    if action == "hold":
        open(f"/tmp/lxcri-smoke/hold.pid", "w").write(f"{pid} {BASE}")
        t = time.time()
        while os.path.exists("/tmp/lxcri-smoke/hold.pid") and time.time() - t < 300:
            time.sleep(0.2)
        os.kill(pid, signal.SIGTERM)
    if action == "exec":
        time.sleep(0.5)
        run_execs(pid)
        os.kill(pid, signal.SIGTERM)
    deadline = time.time() + 15
    while not os.path.exists(f"{RUN}/exit") and time.time() < deadline:
        if master is not None:
            rl, _, _ = select.select([master], [], [], 0.1)
            if rl:
                try: tty_out += os.read(master, 4096)
                except OSError: pass
        else:
            time.sleep(0.05)
    if os.path.exists(f"{BASE}/init.stderr"):
        print("init stderr:", open(f"{BASE}/init.stderr").read())
    if master is not None:
        print("tty output:", tty_out.decode(errors="replace"))
    if not os.path.exists(f"{RUN}/exit"):
        print("no exit file"); print(open(f"{BASE}/lxc.log").read()); return 1
    report = json.load(open(f"{RUN}/exit"))
    print("exit report", report)
    for p in (out_path, err_path):
        if os.path.exists(p): print(f"--- {os.path.basename(p)}:\n" + open(p).read())
    ok = report["status"] == case["expect"]
    print("PASS" if ok else f"FAIL: expected {case['expect']}")
    return 0 if ok else 1

def cgroup_procs(pid):
    for line in open(f"/proc/{pid}/cgroup"):
        h, ctrl, path = line.strip().split(":", 2)
        if h == "0":
            return [f"/sys/fs/cgroup/unified{path}/cgroup.procs"]
    return []

def exec_spec(pid, args, **kw):
    return dict(init_pid=pid, namespaces=["cgroup", "ipc", "uts", "net", "pid", "mnt"],
                cgroup_procs=cgroup_procs(pid), process=proc(args, **kw))

def run_exec(pid, spec, env=None, stdin=None):
    path = f"{BASE}/exec.json"
    json.dump(spec, open(path, "w"))
    return subprocess.run([BIN, "exec", path], capture_output=True, env=env, stdin=stdin, pass_fds=())

def run_execs(pid):
    checks = [
      (["sh", "-c", "echo in-exec $$ $(hostname); cat /proc/1/cmdline | tr '\\0' ' '; echo; ls /.lxcri 2>&1; exit 5"], {}, 5),
      (["sh", "-c", "kill -TERM $$"], {}, -15),
      (["nope"], {}, 127),
      (["/etc"], {}, 126),
      (["sh", "-c", "id; grep -E '^(CapEff|NoNewPrivs)' /proc/self/status; cat /proc/self/oom_score_adj; pwd"],
       dict(uid=1000, gid=1000, cwd="/tmp", no_new_privileges=True, oom_score_adj=500,
            capabilities=dict(bounding=[], effective=[], inheritable=[], permitted=[], ambient=[])), 0),
      (["true"], dict(cwd="/does/not/exist"), 125),
    ]
    for args, kw, want in checks:
        r = run_exec(pid, exec_spec(pid, args, **kw))
        ok = r.returncode == want
        print(f"exec {args}: rc={r.returncode} {'ok' if ok else 'WANT '+str(want)}\n  out={r.stdout.decode()!r}\n  err={r.stderr.decode()!r}")
        CHECKS.append(ok)
    # signals reach the exec'd process; its death by signal is re-raised
    for sig, script, want in [(signal.SIGTERM, "trap 'exit 3' TERM; sleep 100 & wait", 3),
                              (signal.SIGUSR1, "sleep 100", -signal.SIGUSR1)]:
        json.dump(exec_spec(pid, ["sh", "-c", script]), open(f"{BASE}/exec.json", "w"))
        # DEVNULL: the background sleep would hold a pipe open for 100s
        p = subprocess.Popen([BIN, "exec", f"{BASE}/exec.json"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        time.sleep(0.5); p.send_signal(sig); rc = p.wait(timeout=10)
        print(f"exec signal {sig!r}: rc={rc} want={want}")
        CHECKS.append(rc == want)
    # the process dies with the helper (PR_SET_PDEATHSIG)
    json.dump(exec_spec(pid, ["sh", "-c", "echo $$; exec sleep 100"]), open(f"{BASE}/exec.json", "w"))
    p = subprocess.Popen([BIN, "exec", f"{BASE}/exec.json"], stdout=subprocess.PIPE)
    inner = int(p.stdout.readline())
    time.sleep(0.2)
    before = sh("lxc-attach", "-n", NAME, "-P", LXCPATH, "--", "ps", "-o", "pid,stat,comm").stdout
    p.kill(); p.wait()
    time.sleep(0.3)
    after = sh("lxc-attach", "-n", NAME, "-P", LXCPATH, "--", "ps", "-o", "pid,stat,comm").stdout
    # A killed process whose helper died is re-parented outside the container
    # (to the helper's reaper: the shim, a subreaper) and may linger as a zombie.
    alive = lambda out: any(l.split()[0] == str(inner) and not l.split()[1].startswith("Z") for l in out.splitlines()[1:])
    print(f"pdeathsig: inner pid {inner} alive before={alive(before)} after={alive(after)}")
    CHECKS.append(alive(before) and not alive(after))
    # exec with a terminal: the pty master arrives on LXCRI_CONSOLE_FD
    a, b = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
    path = f"{BASE}/exec.json"
    json.dump(exec_spec(pid, ["sh", "-c", "tty; stty size; exit 9"], terminal=True, console_size=dict(rows=11, cols=77)), open(path, "w"))
    p = subprocess.Popen([BIN, "exec", path], env={"LXCRI_CONSOLE_FD": str(b.fileno())}, pass_fds=[b.fileno()],
                         stderr=subprocess.PIPE)
    b.close()
    data, fds, _, _ = socket.recv_fds(a, 1, 4)
    out = b""
    while True:
        try:
            chunk = os.read(fds[0], 4096)
        except OSError:
            break
        if not chunk: break
        out += chunk
    rc = p.wait()
    print(f"exec tty: tag={data!r} rc={rc} out={out.decode()!r} err={p.stderr.read().decode()!r}")
    CHECKS.append(rc == 9 and b"11 77" in out)

CHECKS = []
if __name__ == "__main__":
    if CASE == "all":
        failed = [c for c in CASES if c != "hold" and
                  subprocess.run([sys.executable, sys.argv[0], BIN, c]).returncode != 0]
        print("all passed" if not failed else f"failed: {failed}")
        sys.exit(1 if failed else 0)
    try:
        rc = main()
        if CHECKS and not all(CHECKS):
            print("FAIL: some exec checks failed"); rc = 1
    finally:
        cleanup()
    sys.exit(rc)
