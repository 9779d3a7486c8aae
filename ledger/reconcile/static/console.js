// Upload with a progress bar: the form is sent by XMLHttpRequest so the browser can report
// how much of the file has gone up; then the server's page (the statement, or its validation
// report) replaces this one. Without JavaScript the form posts normally.
(function () {
  "use strict";
  var form = document.getElementById("upload-form");
  if (!form || !window.XMLHttpRequest || !window.FormData) { return; }
  form.addEventListener("submit", function (event) {
    event.preventDefault();
    var box = document.getElementById(form.getAttribute("data-progress"));
    var bar = document.getElementById("upload-bar");
    var status = document.getElementById("upload-status");
    box.hidden = false;
    var xhr = new XMLHttpRequest();
    xhr.open("POST", form.action);
    xhr.upload.addEventListener("progress", function (e) {
      if (e.lengthComputable) {
        bar.value = Math.round(100 * e.loaded / e.total);
        status.textContent = bar.value + "% 已上传 uploaded";
      }
    });
    xhr.upload.addEventListener("load", function () {
      bar.removeAttribute("value");  // indeterminate while the server checks every line
      status.textContent = "正在校验与导入… Checking and importing…";
    });
    xhr.addEventListener("load", function () {
      if (xhr.status < 400 && xhr.responseURL) { window.location.assign(xhr.responseURL); return; }
      document.open(); document.write(xhr.responseText); document.close();
    });
    xhr.addEventListener("error", function () {
      status.textContent = "上传失败 Upload failed: 请重试 try again";
    });
    xhr.send(new FormData(form));
  });
}());
