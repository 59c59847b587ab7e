-- W1: GET one product by a uniformly random SKU.

function request()
  local sku = string.format(CONFIG.sku_format, math.random(0, CONFIG.sku_count - 1))
  return wrk.format("GET", CONFIG.path .. sku)
end
