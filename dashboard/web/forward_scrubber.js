// The Forward page's t scrubber (dashboard/figures.py: forward_scrubber_html fills
// forward_scrubber.html with D, then this script). Eq. A.2, in the browser:
// x_t = sqrt(abar_t) x_0 + sqrt(1 - abar_t) eps, recomputed on every input event of the range
// slider, so scrubbing needs no server round trip. D: {c, h, w, scale, t, abar[], x0, eps, label}
// (x0 and eps: base64 little-endian float32, (C, H, W) in [-1, 1] model units; label: what x_0
// shows, for the text alternatives). For a screen reader: the slider's value text and x_t's label
// say t, abar_t and how much of the image is left; #live announces it once the slider rests.
// window.scrubLatencies: ms from a key press on the slider to its redraw (browser tests).
function f32(b64){const s=atob(b64);const u=new Uint8Array(s.length);
 for(let i=0;i<s.length;i++)u[i]=s.charCodeAt(i);return new Float32Array(u.buffer);}
const x0=f32(D.x0), eps=f32(D.eps), n=D.h*D.w;
function setup(cv){cv.width=D.w;cv.height=D.h;cv.style.width=(D.w*D.scale)+"px";
 cv.style.height=(D.h*D.scale)+"px";return cv.getContext("2d");}
const cx=setup(document.getElementById("xt")), ce=setup(document.getElementById("ep"));
const img=cx.createImageData(D.w,D.h);
function paint(ctx,im,get){const p=im.data;
 for(let i=0;i<n;i++){for(let k=0;k<3;k++){const ch=D.c===3?k:0;let v=(get(ch*n+i)+1)*127.5;
  p[4*i+k]=v<0?0:v>255?255:v;}p[4*i+3]=255;}
 ctx.putImageData(im,0,0);}
const slider=document.getElementById("t");
window.scrubLatencies=[];let tKey=null;
slider.addEventListener("keydown",()=>{tKey=performance.now();});
const what=D.label||"the input image";
function seen(a){return a>=0.5?what+", still clearly visible":a>=0.1?what+", half drowned in noise"
 :a>=0.01?what+", barely visible under the noise":"almost pure noise";}
function describe(t,a,s,r){return "x_t at t = "+t+" (ᾱ_t = "+a.toFixed(3)+"): "+seen(a)+"; √ᾱ_t = "
 +s.toFixed(2)+" times the image plus √(1−ᾱ_t) = "+r.toFixed(2)+" times the noise";}
function draw(e){const t=+slider.value,a=D.abar[t],s=Math.sqrt(a),r=Math.sqrt(1-a);
 paint(cx,img,i=>s*x0[i]+r*eps[i]);
 document.getElementById("tv").textContent=t;document.getElementById("ab").textContent=a.toFixed(4);
 document.getElementById("sa").textContent=s.toFixed(3);document.getElementById("sn").textContent=r.toFixed(3);
 if(tKey!==null){window.scrubLatencies.push(performance.now()-tKey);tKey=null;}
 const text=describe(t,a,s,r);cx.canvas.setAttribute("aria-label",text);
 slider.setAttribute("aria-valuetext","t = "+t+", ᾱ_t = "+a.toFixed(3));if(e)announce(text);}
slider.addEventListener("input",draw);
paint(ce,ce.createImageData(D.w,D.h),i=>eps[i]/3);
ce.canvas.setAttribute("aria-label","ε: the Gaussian noise added to "+what+" ("+D.w+"×"+D.h
 +", fixed by the seed), the same at every t");
draw();
document.getElementById("dl").addEventListener("click",()=>{const big=document.createElement("canvas");
 big.width=D.w*D.scale;big.height=D.h*D.scale;const g=big.getContext("2d");g.imageSmoothingEnabled=false;
 g.drawImage(document.getElementById("xt"),0,0,big.width,big.height);const a=document.createElement("a");
 a.href=big.toDataURL("image/png");a.download="x_t_"+slider.value+".png";a.click();});
