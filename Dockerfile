# One image for every stage; the command picks the stage (see compose.yaml).
FROM node:20-bookworm-slim
WORKDIR /app
ENV NODE_ENV=production ONNXRUNTIME_NODE_INSTALL=skip
COPY package.json package-lock.json .npmrc ./
RUN npm install --omit=dev --no-audit --no-fund
COPY bin ./bin
COPY config ./config
COPY src ./src
COPY stages ./stages
COPY scripts/healthcheck.mjs ./scripts/healthcheck.mjs
COPY samples ./samples
COPY tsconfig.json ./
ENTRYPOINT ["node", "--import", "tsx"]
