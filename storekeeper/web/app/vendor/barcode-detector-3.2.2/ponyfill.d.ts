export * from "./core.js";
export * from "./zxing-exported.js";
