# syntax=docker/dockerfile:1
#
# Builds the lxcri release binaries on Debian 12 (the distribution Proxmox VE 8
# and this project's CI use).
#
#   docker build -t lxcri .                                   # runtime image
#   docker build --target export --output type=local,dest=out .   # just the binaries, in ./out
#
# The runtime image carries the binaries, LXC and the example config; copy
# them onto the node (containerd runs the shim on the host, not in a container).

ARG DEBIAN_RELEASE=bookworm

# ---- build ---------------------------------------------------------------
FROM rust:1-${DEBIAN_RELEASE} AS build
RUN apt-get update \
 && apt-get install -y --no-install-recommends libseccomp-dev pkg-config protobuf-compiler \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY . .
# The registry and target caches outlive this RUN, so the binaries are copied
# out of target/ in the same step. lxcri-init links statically through
# init/build.rs (it must run inside any image); the check below stops a
# build whose init would need the host's dynamic loader.
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/src/target \
    cargo build --release --workspace --locked \
 && if readelf -lW target/release/lxcri-init | grep -q 'program interpreter'; then \
        echo 'lxcri-init is dynamically linked' >&2; exit 1; \
    fi \
 && mkdir -p /out \
 && cp target/release/containerd-shim-lxcri-v2 target/release/lxcri-init target/release/lxcri /out/

# ---- export: `--target export --output type=local,dest=out` ---------------
FROM scratch AS export
COPY --from=build /out/ /

# ---- runtime image (default target) ---------------------------------------
FROM debian:${DEBIAN_RELEASE}-slim
RUN apt-get update \
 && apt-get install -y --no-install-recommends libseccomp2 lxc \
 && rm -rf /var/lib/apt/lists/*
COPY --from=build /out/ /usr/local/bin/
COPY config/lxcri.toml /etc/lxcri/config.toml
COPY config/containerd-1.x.toml config/containerd-2.x.toml /usr/local/share/lxcri/config/
COPY deploy/ /usr/local/share/lxcri/deploy/
CMD ["lxcri", "check"]
