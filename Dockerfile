# The image of the README's Kubernetes Job: kmesh-check with its BPF toolchain, npm dependencies,
# our BPF objects and the compiled CLI. Its one build step is the README's own set-up script
# (scripts/setup.sh), so the image and a developer machine are set up by the same recipe.
FROM node:20-bookworm-slim
WORKDIR /opt/kmesh-check
COPY . .
RUN bash scripts/setup.sh \
 && ln -sf /opt/kmesh-check/bin/kmesh-check.js /usr/local/bin/kmesh-check \
 && rm -rf /var/lib/apt/lists/*
# Failures and reports go to the working directory; mount a volume there to keep them.
WORKDIR /work
ENTRYPOINT []
CMD ["kmesh-check", "--help"]
