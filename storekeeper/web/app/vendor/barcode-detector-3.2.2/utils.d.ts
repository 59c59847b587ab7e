import type { ReadInputBarcodeFormat, ReadOutputBarcodeFormat } from "zxing-wasm/reader";
export type CanvasImageSourceWebCodecs = HTMLOrSVGImageElement | HTMLVideoElement | HTMLCanvasElement | ImageBitmap | OffscreenCanvas | VideoFrame;
export type ImageBitmapSourceWebCodecs = CanvasImageSourceWebCodecs | Blob | ImageData;
export declare const BARCODE_FORMATS: ("any" | "aztec" | "aztec_code" | "aztec_rune" | "codabar" | "code_128" | "code_32" | "code_39" | "code_39_extended" | "code_39_standard" | "code_93" | "compact_pdf417" | "data_matrix" | "databar" | "databar_expanded" | "databar_expanded_stacked" | "databar_limited" | "databar_omni" | "databar_stacked" | "databar_stacked_omni" | "dx_film_edge" | "ean_13" | "ean_8" | "ean_upc" | "gs1_codes" | "industrial_codes" | "isbn" | "itf" | "itf_14" | "linear_codes" | "matrix_codes" | "maxi_code" | "micro_pdf417" | "micro_qr_code" | "other_barcode" | "pdf417" | "pzn" | "qr_code" | "qr_code_model_1" | "qr_code_model_2" | "retail_codes" | "rm_qr_code" | "telepen" | "telepen_alpha" | "telepen_numeric" | "unknown" | "upc_a" | "upc_e")[];
export type BarcodeFormat = (typeof BARCODE_FORMATS)[number];
export type ReadResultBarcodeFormat = Exclude<BarcodeFormat, "linear_codes" | "matrix_codes" | "gs1_codes" | "retail_codes" | "industrial_codes" | "any">;
export declare const formatMap: Map<"any" | "aztec" | "aztec_code" | "aztec_rune" | "codabar" | "code_128" | "code_32" | "code_39" | "code_39_extended" | "code_39_standard" | "code_93" | "compact_pdf417" | "data_matrix" | "databar" | "databar_expanded" | "databar_expanded_stacked" | "databar_limited" | "databar_omni" | "databar_stacked" | "databar_stacked_omni" | "dx_film_edge" | "ean_13" | "ean_8" | "ean_upc" | "gs1_codes" | "industrial_codes" | "isbn" | "itf" | "itf_14" | "linear_codes" | "matrix_codes" | "maxi_code" | "micro_pdf417" | "micro_qr_code" | "other_barcode" | "pdf417" | "pzn" | "qr_code" | "qr_code_model_1" | "qr_code_model_2" | "retail_codes" | "rm_qr_code" | "telepen" | "telepen_alpha" | "telepen_numeric" | "unknown" | "upc_a" | "upc_e", ReadInputBarcodeFormat>;
export declare function convertFormat(target: ReadOutputBarcodeFormat): ReadResultBarcodeFormat;
export declare function isBlob(image: ImageBitmapSourceWebCodecs): image is Blob;
export declare function getImageDataOrBlobFromImageBitmapSource(image: ImageBitmapSourceWebCodecs): Promise<ImageData | Blob | null>;
declare global {
    interface SVGImageElement {
        decode?(): Promise<void>;
    }
}
export declare function addPrefixToExceptionOrError(e: unknown, prefix: string): DOMException | Error;
