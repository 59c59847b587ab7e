export { prepareZXingModule, purgeZXingModule, setZXingModuleOverrides, ZXING_CPP_COMMIT, ZXING_WASM_SHA256, ZXING_WASM_VERSION, } from "zxing-wasm/reader";
