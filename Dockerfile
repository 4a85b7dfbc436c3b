# syntax=docker/dockerfile:1
# edged container image, two flavors from one file:
#   FLAVOR=cpu  (default): debian:12-slim + the .deb's runtime libraries; detection on the CPU.
#   FLAVOR=cuda: the same plus the CUDA runtime from NVIDIA's Debian 12 repository; CUDA kernels built.
# Build with packaging/build-image.sh (podman or buildah; it also stages the demo video for k3d):
#   packaging/build-image.sh --flavor cpu --tag dev
# The image installs the very .deb that CPack builds, so package and image carry the same files and
# dependencies (dpkg-shlibdeps).
ARG FLAVOR=cpu
ARG DEBIAN=debian:12-slim
ARG CUDA_PKG=13-0

# --- toolchains ----------------------------------------------------------------------------------
FROM ${DEBIAN} AS toolchain-cpu
ENV DEBIAN_FRONTEND=noninteractive
RUN apt-get update && apt-get install -y --no-install-recommends \
      build-essential cmake ninja-build pkg-config git ca-certificates file dpkg-dev \
      libabsl-dev libyaml-cpp-dev nlohmann-json3-dev libspdlog-dev libcli11-dev libasio-dev \
      libmosquitto-dev prometheus-cpp-dev libcivetweb-dev \
      libusb-1.0-0-dev libgpiod-dev libsystemd-dev libcurl4-openssl-dev libopencv-dev \
    && rm -rf /var/lib/apt/lists/*

FROM toolchain-cpu AS toolchain-cuda
ARG CUDA_PKG
ADD https://developer.download.nvidia.com/compute/cuda/repos/debian12/x86_64/cuda-keyring_1.1-1_all.deb /tmp/cuda-keyring.deb
RUN dpkg -i /tmp/cuda-keyring.deb && apt-get update && apt-get install -y --no-install-recommends \
      cuda-nvcc-${CUDA_PKG} cuda-cudart-dev-${CUDA_PKG} \
    && rm -rf /var/lib/apt/lists/*
ENV PATH=/usr/local/cuda/bin:${PATH}

# --- build: compile, then package with CPack ----------------------------------------------------
FROM toolchain-${FLAVOR} AS build
ARG FLAVOR
WORKDIR /src
COPY . .
RUN cmake -S . -B /build -G Ninja -DCMAKE_BUILD_TYPE=Release -DEDGED_TESTS=OFF -DEDGED_BENCH=OFF \
      -DEDGED_CUDA=$([ "${FLAVOR}" = cuda ] && echo ON || echo OFF) \
    && cmake --build /build \
    && cd /build && cpack -G DEB && mv /build/edged_*.deb /edged.deb

# --- runtime bases --------------------------------------------------------------------------------
FROM ${DEBIAN} AS runtime-cpu

FROM ${DEBIAN} AS runtime-cuda
ARG CUDA_PKG
ADD https://developer.download.nvidia.com/compute/cuda/repos/debian12/x86_64/cuda-keyring_1.1-1_all.deb /tmp/cuda-keyring.deb
RUN dpkg -i /tmp/cuda-keyring.deb && rm /tmp/cuda-keyring.deb && apt-get update \
    && apt-get install -y --no-install-recommends cuda-cudart-${CUDA_PKG} \
    && rm -rf /var/lib/apt/lists/*
# The NVIDIA container toolkit mounts the driver (libcuda) at run time when these are set.
ENV NVIDIA_VISIBLE_DEVICES=all NVIDIA_DRIVER_CAPABILITIES=compute,utility,video

# --- the image --------------------------------------------------------------------------------------
FROM runtime-${FLAVOR}
ENV DEBIAN_FRONTEND=noninteractive
COPY --from=build /edged.deb /tmp/edged.deb
# systemd-standalone-sysusers satisfies the package's user creation without pulling in all of systemd.
RUN apt-get update \
    && apt-get install -y --no-install-recommends systemd-standalone-sysusers smartmontools \
    && apt-get install -y --no-install-recommends /tmp/edged.deb \
    && rm -rf /var/lib/apt/lists/* /tmp/edged.deb \
    && edged --version
# Sample video for the demo camera (values-k3d.yaml); staged by build-image.sh, may be empty.
COPY .cache/image-demo/ /usr/share/edged/demo/
EXPOSE 9822
VOLUME /var/lib/edged
# Runs as the package's unprivileged edged user; the Helm chart sets its own securityContext.
USER edged
ENTRYPOINT ["/usr/bin/edged"]
CMD ["--config", "/etc/edged/edged.yaml"]
